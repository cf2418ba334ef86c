"""Pure metrics and the window bootstrap of the backtest report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecaster.report import stats


def sums_of(actual: list[float], median: list[float], covered: list[float] | None = None) -> np.ndarray:
    """One window's sums row built by hand (no quantiles: pinball 0)."""
    a, m = np.array(actual), np.array(median)
    row = np.zeros(len(stats.SUM_COLUMNS))
    row[stats.N] = len(a)
    row[stats.ABS_ERR] = np.abs(a - m).sum()
    row[stats.SQ_ERR] = ((a - m) ** 2).sum()
    row[stats.ABS_ACTUAL] = np.abs(a).sum()
    if covered is not None:
        row[stats.COVERED] = sum(covered)
        row[stats.N_INTERVAL] = len(covered)
    return row


def test_when_two_points_then_mae_and_rmse_match_hand_values() -> None:
    row = sums_of([0.0, 10.0], [1.0, 7.0])
    assert stats.mae(row) == pytest.approx(2.0)
    assert stats.rmse(row) == pytest.approx(math.sqrt(5.0))


@pytest.mark.parametrize(
    ("level", "actual", "forecast", "expected"),
    [
        (0.1, 10.0, 8.0, 0.2),
        (0.1, 8.0, 10.0, 1.8),
        (0.9, 10.0, 14.0, 0.4),
        (0.9, 14.0, 10.0, 3.6),
        (0.5, 3.0, 3.0, 0.0),
    ],
)
def test_when_forecast_misses_then_pinball_weights_the_side(
    level: float, actual: float, forecast: float, expected: float
) -> None:
    assert stats.pinball(np.array([actual]), np.array([forecast]), level)[0] == pytest.approx(expected)


def test_when_quantiles_given_then_wql_is_twice_mean_pinball_over_mean_abs_actual() -> None:
    per_point = stats.mean_pinball_over_levels(np.array([10.0]), np.array([[8.0, 10.0, 14.0]]), (0.1, 0.5, 0.9))
    assert per_point[0] == pytest.approx((0.2 + 0.0 + 0.4) / 3)
    row = np.zeros(len(stats.SUM_COLUMNS))
    row[stats.N], row[stats.PINBALL], row[stats.ABS_ACTUAL] = 1, per_point[0], 10.0
    assert stats.wql(row) == pytest.approx(2 * 0.2 / 10.0)


def test_when_actuals_near_zero_then_wql_denominator_is_floored_at_one_watt() -> None:
    row = np.zeros(len(stats.SUM_COLUMNS))
    row[stats.N], row[stats.PINBALL], row[stats.ABS_ACTUAL] = 4, 2.0, 0.04  # mean |actual| 0.01 W
    assert stats.wql(row) == pytest.approx(2 * 0.5 / 1.0)


def test_when_half_the_points_inside_the_interval_then_coverage_is_half() -> None:
    row = sums_of([1, 2, 3, 4], [1, 2, 3, 4], covered=[1, 0, 1, 0])
    assert stats.coverage(row) == pytest.approx(0.5)


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
    model = np.vstack([sums_of([4.0] * 5, [3.0] * 5), sums_of([4.0] * 5, [5.0] * 5)])
    reference = np.vstack([sums_of([4.0] * 5, [0.0] * 5), sums_of([4.0] * 5, [8.0] * 5)])
    skill = stats.skill_estimate(model, reference, stats.resample_counts(2, 200, 0, "s"))
    assert skill.value == pytest.approx(0.75)


def test_when_ratio_by_column_then_each_lead_column_is_its_own_mae() -> None:
    num = np.array([[2.0, 10.0], [4.0, 30.0]])
    den = np.array([[1.0, 1.0], [1.0, 1.0]])
    curve = stats.ratio_by_column(num, den, stats.resample_counts(2, 200, 0, "lead"))
    assert [e.value for e in curve] == pytest.approx([3.0, 20.0])
    assert curve[1].low <= 20.0 <= curve[1].high
