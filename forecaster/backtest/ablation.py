"""The covariate ablation: which covariates each variant gives the models that take covariates (pure)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from forecaster.config import ForecastTask
from forecaster.drivers import DRIVER_FEATURES, Drivers
from forecaster.rolling import window_at
from forecaster.run_contract import ALL_COVARIATES, PAST_COVARIATES, PLAN_FORECAST, TARGET_ONLY, VARIANTS
from forecaster.windows import Window


def variant_task(task: ForecastTask, variant: str) -> ForecastTask:
    """The task with the covariates of one variant: none; past (measured) only; past + the time features;
    past + every known-future covariate of the task (the GX's plan and the PV forecast included)."""
    time_only = [k for k in task.known_covariates if k not in DRIVER_FEATURES]
    if variant == TARGET_ONLY:
        past: list[str] = []
        known: list[str] = []
    elif variant == PAST_COVARIATES:
        past, known = list(task.past_covariates), []
    elif variant == ALL_COVARIATES:
        past, known = list(task.past_covariates), time_only
    elif variant == PLAN_FORECAST:
        past, known = list(task.past_covariates), list(task.known_covariates)
    else:
        raise ValueError(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    return task.model_copy(update={"past_covariates": past, "known_covariates": known})


def task_variants(task: ForecastTask) -> tuple[str, ...]:
    """The variants a backtest of this task runs: "+ plan and forecast" only when the task lists a driver
    covariate (else it would repeat "+ all covariates")."""
    if any(k in DRIVER_FEATURES for k in task.known_covariates):
        return VARIANTS
    return tuple(v for v in VARIANTS if v != PLAN_FORECAST)


def variant_windows(
    series: Mapping[str, np.ndarray],
    grid_start_ns: int,
    task: ForecastTask,
    cutoff_ns: int,
    drivers: Drivers | None = None,
) -> dict[str, Window]:
    """One Window per variant at a cut-off (the same target context in each; never reads past the cut-off, and
    the drivers only as known at the cut-off)."""
    return {
        v: window_at(series, grid_start_ns, variant_task(task, v), cutoff_ns, drivers=drivers)
        for v in task_variants(task)
    }
