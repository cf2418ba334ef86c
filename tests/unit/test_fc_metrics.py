"""Metric table tests: hand-computed values, NaN handling, quiet windows do not blow up."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecaster import metrics

NAN = float("nan")


@pytest.mark.parametrize(
    ("actual", "pred", "mae", "rmse"),
    [
        ([1, 2, 3], [1, 2, 3], 0.0, 0.0),
        ([0, 0, 0, 0], [1, -1, 3, -3], 2.0, math.sqrt(5.0)),
        ([100, NAN, 300], [110, 0, 270], 20.0, math.sqrt((100 + 900) / 2)),
        ([NAN], [1], NAN, NAN),
    ],
)
def test_mae_and_rmse(actual: list[float], pred: list[float], mae: float, rmse: float) -> None:
    got_mae = metrics.mae(np.array(actual), np.array(pred))
    got_rmse = metrics.rmse(np.array(actual), np.array(pred))
    if math.isnan(mae):
        assert math.isnan(got_mae) and math.isnan(got_rmse)
    else:
        assert got_mae == pytest.approx(mae) and got_rmse == pytest.approx(rmse)


@pytest.mark.parametrize(
    ("actual", "pred", "level", "loss"),
    [(10, 8, 0.9, 1.8), (10, 12, 0.9, 0.2), (10, 8, 0.1, 0.2), (10, 12, 0.1, 1.8), (5, 5, 0.5, 0.0)],
)
def test_pinball(actual: float, pred: float, level: float, loss: float) -> None:
    assert float(metrics.pinball(np.array(actual), np.array(pred), level)) == pytest.approx(loss)


def test_weighted_quantile_loss_by_hand() -> None:
    y = np.array([1000.0, -1000.0])
    q = {0.1: np.array([900.0, -1100.0]), 0.5: np.array([1000.0, -900.0]), 0.9: np.array([1200.0, -800.0])}
    # pinball sums: q0.1: 0.1*100 + 0.1*100 = 20; q0.5: 0 + 0.5*100 = 50; q0.9: 0.1*200 + 0.1*200 = 40
    expected = np.mean([2 * 20, 2 * 50, 2 * 40]) / 2000
    assert metrics.weighted_quantile_loss(y, q, floor_w=100) == pytest.approx(expected)


def test_when_the_window_is_quiet_then_the_floor_keeps_wql_finite() -> None:
    y = np.zeros(4)
    q = {0.5: np.full(4, 10.0)}
    # Σ|y| = 0: the floor 100 W per step is used instead -> 2*(0.5*10*4) / 400
    assert metrics.weighted_quantile_loss(y, q, floor_w=100) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("actual", "lo", "hi", "cov"),
    [([1, 2, 3, 4], [0, 0, 0, 0], [2, 2, 2, 2], 0.5), ([1, NAN], [0, 0], [2, 2], 1.0), ([5], [0], [4], 0.0)],
)
def test_coverage(actual: list[float], lo: list[float], hi: list[float], cov: float) -> None:
    assert metrics.coverage(np.array(actual), np.array(lo), np.array(hi)) == pytest.approx(cov)


@pytest.mark.parametrize(("model", "persistence", "skill"), [(50, 100, 0.5), (100, 100, 0.0), (150, 100, -0.5)])
def test_skill(model: float, persistence: float, skill: float) -> None:
    assert metrics.skill(model, persistence) == pytest.approx(skill)


def test_when_persistence_is_perfect_then_skill_is_undefined() -> None:
    assert math.isnan(metrics.skill(10.0, 0.0)) and math.isnan(metrics.skill(10.0, NAN))
