"""The covariate ablation: which covariates each variant gives Chronos-2 (pure)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from forecaster.config import ForecastTask
from forecaster.rolling import window_at
from forecaster.run_contract import ALL_COVARIATES, PAST_COVARIATES, TARGET_ONLY, VARIANTS
from forecaster.windows import Window


def variant_task(task: ForecastTask, variant: str) -> ForecastTask:
    """The task with the covariates of one variant: none; past (measured) only; past + known-future."""
    if variant == TARGET_ONLY:
        past: list[str] = []
        known: list[str] = []
    elif variant == PAST_COVARIATES:
        past, known = list(task.past_covariates), []
    elif variant == ALL_COVARIATES:
        past, known = list(task.past_covariates), list(task.known_covariates)
    else:
        raise ValueError(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    return task.model_copy(update={"past_covariates": past, "known_covariates": known})


def variant_windows(
    series: Mapping[str, np.ndarray], grid_start_ns: int, task: ForecastTask, cutoff_ns: int
) -> dict[str, Window]:
    """One Window per variant at a cut-off (the same target context in each; never reads past the cut-off)."""
    return {v: window_at(series, grid_start_ns, variant_task(task, v), cutoff_ns) for v in VARIANTS}
