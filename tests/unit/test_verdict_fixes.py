"""Verdicts the site can trust: the quiet threshold follows the battery's scale, the data's regime hours,
and fallback lines that name only variants a model has."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from forecaster import regimes, zoo
from forecaster.backtest.cutoffs import forecast_cutoff
from forecaster.backtest.plan import make_plan
from forecaster.config import ForecastTask
from forecaster.windows import NS, Window

DAY = 288  # 5-min steps


def battery_day(scale_w: float, noise_w: float, days: int = 2, seed: int = 0) -> np.ndarray:
    """Idle nights (noise only), charging at midday, discharging in the evening: `scale_w` sets the size."""
    rng = np.random.default_rng(seed)
    hour = (np.arange(days * DAY) % DAY) / 12.0
    power = np.where((hour >= 10) & (hour < 15), scale_w, 0.0)
    power = np.where((hour >= 18) & (hour < 22), -0.6 * scale_w, power)
    return power + rng.normal(0.0, noise_w, power.size)


def test_when_the_battery_is_megawatt_scale_then_its_idle_nights_are_quiet_not_cycling() -> None:
    grid = battery_day(scale_w=2e6, noise_w=8e3)  # a 2 MW battery, ±8 kW of noise when idle
    threshold = regimes.quiet_threshold(grid, fraction=0.05)
    assert 0.05 * 1.9e6 < threshold.value_w < 0.05 * 2.1e6 and "99th percentile" in threshold.how
    night = grid[: 6 * 12]  # 00:00-06:00
    assert regimes.horizon_regime(night, threshold.value_w) == "quiet"
    assert regimes.horizon_regime(night, 100.0) == "cycling"  # what the old absolute 100 W said


def test_when_the_battery_is_a_small_home_battery_then_a_real_100_w_load_is_not_quiet() -> None:
    grid = battery_day(scale_w=800.0, noise_w=3.0)  # an 800 W home battery
    threshold = regimes.quiet_threshold(grid, fraction=0.05)
    assert threshold.value_w < 50.0
    assert regimes.horizon_regime(np.full(12, 100.0), threshold.value_w) == "cycling"


def test_when_an_absolute_override_is_set_then_it_wins_and_says_so() -> None:
    threshold = regimes.quiet_threshold(battery_day(2e6, 8e3), fraction=0.05, override_w=250.0)
    assert threshold.value_w == 250.0 and "override" in threshold.how
    assert regimes.quiet_threshold(np.full(10, np.nan), 0.05).how.startswith("fallback")


def test_when_regime_hours_are_counted_then_they_are_hours_of_data_not_windows() -> None:
    quiet, cycling = np.zeros(12), np.full(12, 2000.0)
    series = np.concatenate([quiet] * 6 + [cycling] * 2 + [np.full(12, np.nan)])  # 9 blocks, one empty
    hours = regimes.regime_hours(series, step_s=300, block_steps=12, threshold_w=100.0)
    assert hours == {"quiet": 6.0, "cycling": 2.0, "transition": 0.0}
    assert regimes.shares(hours) == {"quiet": 0.75, "cycling": 0.25, "transition": 0.0}


class Broken:
    """A registered baseline that always fails (it takes no covariates)."""

    name: ClassVar[str] = "broken"
    label: ClassVar[str] = "broken"
    kind: ClassVar[zoo.Kind] = zoo.BASELINE
    takes_covariates: ClassVar[bool] = False
    version = "x"

    def __init__(self, resources: zoo.Resources) -> None:
        del resources

    def predict(self, window: Window, levels: Sequence[float]) -> np.ndarray:
        raise RuntimeError("boom")


def test_when_a_baseline_falls_back_then_the_failure_names_no_covariate_variant() -> None:
    task = ForecastTask(name="t", resolution="5m", context_steps=DAY, horizon_steps=12, cadence="1h")
    start = 1_767_225_600 * NS
    plan = make_plan(task, start + DAY * 300 * NS, start + 2 * DAY * 300 * NS, start + 3 * DAY * 300 * NS)
    series = {key: battery_day(3000.0, 10.0, days=3) for key in (task.target, *task.past_covariates)}
    lineup = [Broken(zoo.Resources()), *zoo.lineup(zoo.Resources(), [zoo.Persistence])]
    done, outcome, reason = forecast_cutoff(lineup, (0.1, 0.5, 0.9), series, plan, plan.cutoffs[0])
    assert reason is None and outcome is not None
    assert set(outcome.failures) == {"broken"}  # not broken/target_only, broken/past_covariates, ...
    assert {(v, f.model) for v, f in done} == {("none", "broken"), ("none", "persistence")}
