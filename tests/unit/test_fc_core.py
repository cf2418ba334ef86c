"""Pure forecaster core: grids, windows (no leakage), leads, regimes, baselines, frame fields, gate."""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import pytest
from pydantic import ValidationError

from forecaster import baselines, regimes
from forecaster.config import ForecastTask
from forecaster.frame import Forecast, field_level, forecast_samples, mean_from_quantiles, quantile_field
from forecaster.gate import decide
from forecaster.leads import lead_bucket, lead_label
from forecaster.windows import (
    NS,
    Window,
    build_window,
    chronos_input,
    skip_reason,
    slice_context,
    time_features,
    to_regular_grid,
)

MONDAY_NS = 1_767_571_200 * NS  # 2026-01-05T00:00:00Z, a Monday


def window_of(target: np.ndarray, horizon: int = 4, step_s: int = 60, cutoff_ns: int = MONDAY_NS) -> Window:
    return build_window(
        "t",
        cutoff_ns,
        step_s * NS,
        {"p": target, "v": target * 0 + 50},
        target="p",
        past_covariates=["v"],
        known_covariates=["tod_sin", "tod_cos"],
        horizon_steps=horizon,
    )


def test_when_points_are_missing_or_off_grid_then_the_grid_has_nan_there() -> None:
    grid = to_regular_grid({0: 1.0, 120: 3.0, 130: 9.0, 600: 7.0}, start_ns=0, step_ns=60, n=4)
    np.testing.assert_array_equal(grid, [1.0, np.nan, 3.0, np.nan])


@pytest.mark.parametrize(
    ("offset_s", "tod_sin", "tod_cos", "dow_sin", "dow_cos"),
    [
        (0, 0.0, 1.0, 0.0, 1.0),
        (6 * 3600, 1.0, 0.0, np.sin(2 * np.pi * 0.25 / 7), np.cos(2 * np.pi * 0.25 / 7)),
        (2 * 86400 + 18 * 3600, -1.0, 0.0, np.sin(2 * np.pi * 2.75 / 7), np.cos(2 * np.pi * 2.75 / 7)),
    ],
)
def test_time_features_are_utc_time_of_day_and_monday_based_day_of_week(
    offset_s: int, tod_sin: float, tod_cos: float, dow_sin: float, dow_cos: float
) -> None:
    f = time_features(np.array([MONDAY_NS + offset_s * NS]))
    assert f["tod_sin"][0] == pytest.approx(tod_sin, abs=1e-9) and f["tod_cos"][0] == pytest.approx(tod_cos, abs=1e-9)
    assert f["dow_sin"][0] == pytest.approx(dow_sin) and f["dow_cos"][0] == pytest.approx(dow_cos)


def test_when_a_window_is_built_then_future_covariates_come_from_timestamps_only() -> None:
    target = np.arange(10, dtype=float)
    w = window_of(target)
    inp = cast(dict[str, dict[str, np.ndarray]], chronos_input(w))
    assert set(inp["future_covariates"]) == {"tod_sin", "tod_cos"}  # never a measured series
    assert set(inp["past_covariates"]) == {"v", "tod_sin", "tod_cos"}  # known ones keep their history too
    expected = time_features(MONDAY_NS + 60 * NS * np.arange(4))
    np.testing.assert_allclose(inp["future_covariates"]["tod_sin"], expected["tod_sin"])
    np.testing.assert_array_equal(w.horizon_ts_ns, MONDAY_NS + 60 * NS * np.arange(4))
    np.testing.assert_array_equal(w.lead_s, [60, 120, 180, 240])


def test_when_slicing_long_series_then_nothing_at_or_after_the_cutoff_enters_the_context() -> None:
    series = {"p": np.arange(100, dtype=float)}
    ctx = slice_context(series, grid_start_ns=0, step_ns=NS, cutoff_ns=50 * NS, context_steps=10)
    np.testing.assert_array_equal(ctx["p"], np.arange(40, 50))
    early = slice_context(series, grid_start_ns=0, step_ns=NS, cutoff_ns=3 * NS, context_steps=5)
    np.testing.assert_array_equal(early["p"], [np.nan, np.nan, 0, 1, 2])


def test_when_config_names_a_measured_series_as_known_future_then_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="leak"):
        ForecastTask(name="x", known_covariates=["pv_power_w"])


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (np.full(10, np.nan), "no target data"),
        (np.r_[np.full(8, np.nan), 1.0, 2.0], "only 20%"),
        (np.r_[np.ones(6), np.full(4, np.nan)], "last value is 4 steps"),
        (np.r_[np.ones(8), np.nan, 1.0], None),
    ],
)
def test_skip_reason_table(target: np.ndarray, reason: str | None) -> None:
    got = skip_reason(window_of(target), min_fraction=0.5, max_last_gap_steps=3)
    assert got == reason if reason is None else (got is not None and reason in got)


@pytest.mark.parametrize(
    ("lead_s", "label", "bucket"),
    [
        (60, "1m", "0-15m"),
        (900, "15m", "0-15m"),
        (960, "16m", "15-30m"),
        (3600, "1h", "30-60m"),
        (5400, "90m", "1-6h"),
        (86400, "24h", "6-24h"),
        (90000, "25h", ">24h"),
        (45, "45s", "0-15m"),
    ],
)
def test_lead_labels_and_buckets(lead_s: int, label: str, bucket: str) -> None:
    assert lead_label(lead_s) == label and lead_bucket(lead_s) == bucket


@pytest.mark.parametrize(
    ("power", "label"),
    [
        ([10, -20, 30, np.nan], "quiet"),
        ([500, -800, 500, -800], "cycling"),
        ([0, 5, 2000, 1500], "transition"),
        ([np.nan, np.nan], "unknown"),
        ([99, -99, 99, -99], "quiet"),
        ([100, -100, 100, 100], "cycling"),
    ],
)
def test_horizon_regime_table(power: list[float], label: str) -> None:
    assert regimes.horizon_regime(np.array(power, dtype=float), threshold_w=100) == label


def test_issue_regime_reads_only_the_tail_of_the_context() -> None:
    context = np.r_[np.full(10, 2000.0), np.zeros(3)]
    assert regimes.issue_regime(context, 100, tail_steps=3) == "quiet"
    assert regimes.issue_regime(context, 100, tail_steps=5) == "cycling"


def test_persistence_repeats_the_last_value_with_an_empirical_spread() -> None:
    target = np.array([0, 100, 0, -100, 0, 100, 0, -100, 50, np.nan])
    q = baselines.persistence(window_of(target, horizon=2), (0.1, 0.5, 0.9))
    np.testing.assert_allclose(q[1], [50.0, 50.0])  # median = last observed value
    assert q[0, 0] < 50 < q[2, 0]  # 1-step changes were about ±100


def test_seasonal_naive_uses_the_same_time_one_season_earlier() -> None:
    season = np.arange(6, dtype=float)
    target = np.r_[season, season + 1, season - 1, season]  # season of 6 steps, day-over-day changes of ±1
    q = baselines.seasonal_naive(window_of(target, horizon=8), (0.1, 0.5, 0.9), season_steps=6)
    np.testing.assert_allclose(q[1], [0, 1, 2, 3, 4, 5, 0, 1])
    assert (q[0] < q[2]).all()  # a real spread from the seasonal differences
    with pytest.raises(ValueError, match="needs 30 steps"):
        baselines.seasonal_naive(window_of(target), (0.5,), season_steps=20)


def test_seasonal_naive_with_exactly_one_season_of_context_is_not_available_rather_than_spreadless() -> None:
    one_season = np.sin(np.arange(24, dtype=float))
    with pytest.raises(ValueError, match="for its spread"):
        baselines.seasonal_naive(window_of(one_season, horizon=4), (0.1, 0.5, 0.9), season_steps=24)


def test_quantile_field_names_round_trip() -> None:
    for level in (0.01, 0.05, 0.1, 0.5, 0.95, 0.99):
        assert field_level(quantile_field(level)) == level
    assert quantile_field(0.1) == "q0_1" and quantile_field(0.05) == "q0_05"
    assert field_level("median") is None and field_level("cutoff_ns") is None


def test_mean_from_symmetric_quantiles_is_the_median() -> None:
    levels = (0.1, 0.3, 0.5, 0.7, 0.9)
    q = np.array([[-2.0], [-1.0], [0.0], [1.0], [2.0]]) + 10
    assert mean_from_quantiles(levels, q)[0] == pytest.approx(10.0)
    skewed = np.array([[0.0], [0.0], [0.0], [0.0], [100.0]])
    assert mean_from_quantiles(levels, skewed)[0] > 0


def test_forecast_points_carry_levels_from_the_forecast_not_fixed_indices() -> None:
    levels = (0.2, 0.5, 0.8)
    ts = MONDAY_NS + 60 * NS * np.arange(2)
    f = Forecast(
        "t",
        "battery_power_w",
        "base",
        "base:x",
        MONDAY_NS,
        ts,
        np.array([60, 120]),
        levels,
        np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
        np.array([3.0, 4.0]),
        fallback="boom",
    )
    samples = forecast_samples(f, "shop", "live")
    assert [s.ts_ns for s in samples] == list(ts)
    first = samples[0]
    assert first.fields["q0_2"] == 1.0 and first.fields["q0_8"] == 5.0 and first.fields["median"] == 3.0
    assert "q0_1" not in first.fields and first.fields["cutoff_ns"] == MONDAY_NS
    assert first.tags == {
        "site": "shop",
        "task": "t",
        "target": "battery_power_w",
        "model": "base",
        "model_version": "base:x",
        "lead": "1m",
        "lead_bucket": "0-15m",
        "run": "live",
        "fallback": "persistence",
    }


SITE_CANDIDATE = {"all": 424.0, "transition": 572.9, "cycling": 997.8, "quiet": 33.8}  # gbm, tests/integration/
SITE_PERSISTENCE = {"all": 475.6, "transition": 689.6, "cycling": 1121.3, "quiet": 7.5}  # test_gbm_live.py


@pytest.mark.parametrize(
    ("candidate", "incumbent", "windows", "quiet_w", "promote"),  # worse beyond noise unless the row says
    [
        ({"all": 90, "quiet": 20, "cycling": 200}, {"all": 100, "quiet": 20, "cycling": 220}, {}, 10, True),
        ({"all": 100, "quiet": 20}, {"all": 100, "quiet": 20}, {}, 10, False),  # not strictly better
        ({"all": 90, "quiet": 35}, {"all": 100, "quiet": 20}, {}, 10, False),  # +75 %, +15 W > quiet threshold
        ({"all": 90, "quiet": 21}, {"all": 100, "quiet": 20}, {}, 10, True),  # within the margin
        ({"all": 90, "quiet": 28}, {"all": 100, "quiet": 20}, {}, 10, True),  # +40 % but +8 W: still parked
        ({"all": 90, "cycling": 215}, {"all": 100, "cycling": 200}, {}, 10, False),  # +7.5 %, +15 W > 5 % of 100
        ({"all": 380, "cycling": 1040}, {"all": 400, "cycling": 1000}, {}, 10, True),  # +4 %: within the margin
        ({"all": 380, "cycling": 1060}, {"all": 400, "cycling": 1000}, {}, 10, False),  # +6 %, +60 W > 20 W
        ({"all": 380, "transition": 56}, {"all": 400, "transition": 50}, {}, 10, True),  # +12 % but 6 W <= 20 W
        (SITE_CANDIDATE, SITE_PERSISTENCE, {}, 209.1, True),  # parked 7.5 W -> 33.8 W: below the 209 W threshold
        ({**SITE_CANDIDATE, "quiet": 250.0}, SITE_PERSISTENCE, {}, 209.1, False),  # +242 W on parked windows
        ({"all": 90, "quiet": 40}, {"all": 100, "quiet": 20}, {"quiet": 4}, 10, True),  # too few quiet windows
        ({"all": 90, "quiet": 40}, {"all": 100, "quiet": 20}, {"quiet": 5}, 10, False),  # enough windows: blocks
        ({"all": 90, "transition": 500}, {"all": 100}, {}, 10, True),  # regime missing on one side is not compared
        ({"quiet": 10}, {"all": 100}, {}, 10, False),  # no overall score
    ],
)
def test_gate_table(
    candidate: dict[str, float], incumbent: dict[str, float], windows: dict[str, int], quiet_w: float, promote: bool
) -> None:
    counts = {r: windows.get(r, 20) for r in candidate}
    beyond_noise = dict.fromkeys(candidate, 1.0)  # the lower 95 % bound of candidate - incumbent is above 0
    decision = decide(
        candidate,
        incumbent,
        margin=0.05,
        windows=counts,
        min_regime_windows=5,
        quiet_threshold_w=quiet_w,
        worse_low_w=beyond_noise,
    )
    assert decision.promote is promote and decision.reasons


@pytest.mark.parametrize(("low_w", "promote"), [(12.0, False), (0.0, True), (-30.0, True), (math.nan, True)])
def test_gate_refuses_on_a_regime_only_when_it_is_worse_beyond_noise(low_w: float, promote: bool) -> None:
    # transitions +60 W (+11 %) on 33 windows, better overall: refused only when the interval excludes zero
    decision = decide(
        {"all": 386, "transition": 606, "cycling": 1000},
        {"all": 401, "transition": 545, "cycling": 1174},
        margin=0.05,
        windows={"all": 100, "transition": 33, "cycling": 18},
        min_regime_windows=5,
        quiet_threshold_w=210,
        worse_low_w={"transition": low_w, "cycling": -200.0},
    )
    assert decision.promote is promote
    assert ("beyond noise" in decision.reasons[0]) is not promote
