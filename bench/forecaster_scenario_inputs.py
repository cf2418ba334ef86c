"""What the forecaster scenarios (bench.forecaster_scenarios) share: the intraday task's shapes, the model,
synthetic windows, and bracketed timing."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench.forecaster_core import NS, synthetic_series
from forecaster.config import ForecastTask

STEP_S = 60
SITE = "bench"


# The "4 covariates" shape: target + voltage, SoC, PV (past) + time of day (known); the default intraday task
# has 8 (4 measured + 4 time features).
FOUR_COVARIATE_INTRADAY = ForecastTask(
    name="intraday",
    past_covariates=["battery_voltage_v", "battery_soc_pct", "pv_power_w"],
    known_covariates=["tod_sin"],
)


def scenario_task(ctx: int, horizon: int, shape: str = "default") -> ForecastTask:
    """The intraday task's shape (1 min; default: 4 measured past covariates + 4 time features; 4cov: the
    4-covariate shape above) at ctx/horizon."""
    task = FOUR_COVARIATE_INTRADAY if shape == "4cov" else ForecastTask(name="intraday")
    return task.model_copy(update={"context_steps": ctx, "horizon_steps": horizon})


def scenario_pipeline(args: argparse.Namespace) -> Any:
    from forecaster.models import load_pipeline

    return load_pipeline(str(args.model_dir), args.threads)


def scenario_windows(task: ForecastTask, count: int, seed: int = 0) -> list[Any]:
    """`count` windows of the task at consecutive hourly cut-offs over synthetic 1-min history."""
    from forecaster.rolling import window_at

    start = 1_760_000_000 * NS // (STEP_S * NS) * (STEP_S * NS)
    n = task.context_steps + count * 60 + task.horizon_steps
    series = synthetic_series(start, n, STEP_S, seed)
    first = start + task.context_steps * STEP_S * NS
    return [window_at(series, start, task, first + i * 3600 * NS) for i in range(count)]


def timed_s(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def bracketed(
    reference: Callable[[], Any], measured: Callable[[], Any], warm_up: Callable[[], Any] | None = None
) -> tuple[list[float], float]:
    """Seconds of `measured`, timed between two timed runs of `reference` (after a warm-up: `reference` itself
    unless given), so that drift on a loaded machine shows as the reference's two times differing."""
    (warm_up or reference)()
    reference_s = [timed_s(reference)]
    measured_s = timed_s(measured)
    reference_s.append(timed_s(reference))
    return reference_s, measured_s
