"""Pure metrics and the window bootstrap of the backtest report."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from forecaster import metrics
from forecaster.report import stats


def sums_of(
    actual: list[float], median: list[float], covered: list[float] | None = None, reference: list[float] | None = None
) -> np.ndarray:
    """One window's sums row, through forecaster.metrics (no quantiles: pinball 0)."""
    a = np.array(actual)
    quantiles = None
    if covered is not None:  # an interval that covers exactly the points marked 1
        inside = np.array(covered, dtype=bool)
        quantiles = {0.1: np.where(inside, a - 1, a + 1), 0.9: np.where(inside, a + 1, a + 2)}
    ref = np.array(reference) if reference is not None else None
    return metrics.point_terms(a, np.array(median), quantiles, ref).sum(axis=0)


def test_when_two_points_then_mae_and_rmse_match_hand_values() -> None:
    row = sums_of([0.0, 10.0], [1.0, 7.0])
    assert metrics.mae_of(row) == pytest.approx(2.0)
    assert metrics.rmse_of(row) == pytest.approx(math.sqrt(5.0))


def test_when_quantiles_given_then_wql_is_twice_summed_mean_pinball_over_summed_abs_actual() -> None:
    quantiles = {0.1: np.array([8.0]), 0.5: np.array([10.0]), 0.9: np.array([14.0])}
    row = metrics.point_terms(np.array([10.0]), np.array([10.0]), quantiles).sum(axis=0)
    assert row[metrics.PINBALL] == pytest.approx((0.2 + 0.0 + 0.4) / 3)
    assert metrics.wql_of(row, floor_w=1.0) == pytest.approx(2 * 0.2 / 10.0)


def test_when_actuals_near_zero_then_wql_denominator_is_floored_per_step() -> None:
    row = np.zeros(len(metrics.SUM_COLUMNS))
    row[metrics.N], row[metrics.PINBALL], row[metrics.ABS_ACTUAL] = 4, 2.0, 0.04
    assert metrics.wql_of(row, floor_w=100.0) == pytest.approx(2 * 2.0 / 400.0)


def test_when_half_the_points_inside_the_interval_then_coverage_is_half() -> None:
    row = sums_of([1, 2, 3, 4], [1, 2, 3, 4], covered=[1, 0, 1, 0])
    assert metrics.coverage_of(row) == pytest.approx(0.5)


def test_when_errors_cluster_by_window_then_the_ci_reflects_windows_not_rows() -> None:
    # Two windows of 500 points: one perfect, one off by 10 W. Resampling rows would give a CI of ~±0.3 W;
    # resampling windows must give a wide one because there are only two independent windows.
    window_sums = np.vstack([sums_of([0.0] * 500, [0.0] * 500), sums_of([0.0] * 500, [10.0] * 500)])
    counts = stats.resample_counts(2, 1000, seed=1, key="clustered")
    mae = stats.metric_estimates(window_sums, counts)["mae"]
    assert mae.value == pytest.approx(5.0)
    assert mae.low <= 2.5
    assert mae.high >= 7.5


def test_when_same_seed_and_key_then_counts_repeat_and_each_row_resamples_all_windows() -> None:
    a = stats.resample_counts(7, 50, seed=3, key="k")
    b = stats.resample_counts(7, 50, seed=3, key="k")
    c = stats.resample_counts(7, 50, seed=4, key="k")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(a.sum(axis=1) == 7)


def test_when_one_window_then_there_is_no_ci() -> None:
    window_sums = np.vstack([sums_of([1.0, 2.0], [0.0, 0.0])])
    mae = stats.metric_estimates(window_sums, stats.resample_counts(1, 100, 0, "one"))["mae"]
    assert mae.value == pytest.approx(1.5)
    assert not mae.has_ci
    assert not mae.excludes_zero


def test_when_b_halves_every_window_error_then_paired_change_is_minus_half_beyond_noise() -> None:
    rng = np.random.default_rng(0)
    windows = [rng.uniform(50, 500, 20) for _ in range(15)]
    sums_a = np.vstack([sums_of(list(w), [0.0] * 20) for w in windows])
    sums_b = np.vstack([sums_of(list(w), list(w / 2)) for w in windows])
    result = stats.paired_estimate(sums_a, sums_b, stats.resample_counts(15, 500, 0, "p"), "mae")
    assert result.rel.value == pytest.approx(-0.5)
    assert result.rel.low == pytest.approx(-0.5)
    assert result.diff.excludes_zero
    assert result.diff.high < 0


def test_when_b_equals_a_then_the_paired_difference_is_zero_and_within_noise() -> None:
    rng = np.random.default_rng(1)
    sums = np.vstack([sums_of(list(rng.normal(0, 100, 10)), [0.0] * 10) for _ in range(12)])
    result = stats.paired_estimate(sums, sums.copy(), stats.resample_counts(12, 300, 0, "same"), "mae")
    assert result.diff.value == 0.0
    assert not result.diff.excludes_zero


def test_when_model_error_is_a_quarter_of_the_reference_then_skill_is_three_quarters() -> None:
    windows = np.vstack(
        [sums_of([4.0] * 5, [3.0] * 5, reference=[0.0] * 5), sums_of([4.0] * 5, [5.0] * 5, reference=[8.0] * 5)]
    )
    skill = stats.metric_estimates(windows, stats.resample_counts(2, 200, 0, "s"))["skill"]
    assert skill.value == pytest.approx(0.75)


def test_when_persistence_is_perfect_then_skill_is_not_available_without_a_warning() -> None:
    windows = np.vstack([sums_of([0.0] * 3, [1.0] * 3, reference=[0.0] * 3)] * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skill = stats.metric_estimates(windows, stats.resample_counts(3, 50, 0, "p"))["skill"]
    assert math.isnan(skill.value)


def test_when_ratio_by_column_then_each_lead_column_is_its_own_mae() -> None:
    num = np.array([[2.0, 10.0], [4.0, 30.0]])
    den = np.array([[1.0, 1.0], [1.0, 1.0]])
    curve = stats.ratio_by_column(num, den, stats.resample_counts(2, 200, 0, "lead"))
    assert [e.value for e in curve] == pytest.approx([3.0, 20.0])
    assert curve[1].low <= 20.0 <= curve[1].high
