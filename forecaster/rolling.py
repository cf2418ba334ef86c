"""Rolling-origin evaluation on gridded history (pure apart from the predict callable).

Used by the promotion gate; the backtest command builds its windows with the same functions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from forecaster import metrics, regimes
from forecaster.config import ForecastTask
from forecaster.drivers import Drivers
from forecaster.frame import monotone
from forecaster.windows import NS, Window, build_window, skip_reason, slice_context
from forecaster.zoo.protocol import ForecastModel, median_of

PredictFn = Callable[[Window], np.ndarray]  # window -> median forecast (H,)


def median_forecaster(model: ForecastModel, levels: Sequence[float]) -> PredictFn:
    """window -> the model's median forecast: protocol predict, monotone rearrangement, 0.5 quantile."""

    def predict(window: Window) -> np.ndarray:
        return median_of(monotone(model.predict(window, levels)), levels)

    return predict


def window_at(
    series: Mapping[str, np.ndarray],
    grid_start_ns: int,
    task: ForecastTask,
    cutoff_ns: int,
    context_steps: int | None = None,
    *,
    drivers: Drivers | None = None,
) -> Window:
    """The Window of a task at one cut-off, from long gridded series (never reads past the cut-off) and the
    drivers as known at the cut-off (forecaster.drivers)."""
    step_ns = task.resolution_s * NS
    context = slice_context(series, grid_start_ns, step_ns, cutoff_ns, context_steps or task.context_steps)
    return build_window(
        task.name,
        cutoff_ns,
        step_ns,
        context,
        target=task.target,
        past_covariates=task.past_covariates,
        known_covariates=task.known_covariates,
        horizon_steps=task.horizon_steps,
        drivers=drivers,
    )


def actual_after(series: np.ndarray, grid_start_ns: int, step_ns: int, cutoff_ns: int, steps: int) -> np.ndarray:
    """The actuals of the `steps` buckets from the cut-off on (NaN beyond the data)."""
    start = (cutoff_ns - grid_start_ns) // step_ns
    part = np.asarray(series[start : start + steps], dtype=float)
    return np.concatenate([part, np.full(steps - part.size, np.nan)])


def rolling_cutoffs(start_ns: int, end_ns: int, horizon_ns: int, count: int, align_ns: int) -> list[int]:
    """Up to `count` evenly spaced cut-offs whose horizon lies within [start, end]."""
    last = end_ns - horizon_ns
    if last < start_ns:
        return []
    raw = np.linspace(start_ns, last, count) if count > 1 else np.array([last])
    return sorted({int(c) - int(c) % align_ns for c in raw if int(c) - int(c) % align_ns >= start_ns})


def backtest_window_sums(
    predict: PredictFn,
    series: Mapping[str, np.ndarray],
    grid_start_ns: int,
    task: ForecastTask,
    *,
    cutoffs: Sequence[int],
    threshold_w: float,
    context_steps: int | None = None,
    drivers: Drivers | None = None,
) -> dict[str, np.ndarray]:
    """Overall (metrics.ALL) and per horizon regime: the (windows, metrics.SUM_COLUMNS) summed terms of each
    usable window, in cut-off order (the same windows for any model: skipping depends on the data only)."""
    step_ns = task.resolution_s * NS
    windows: dict[str, list[np.ndarray]] = {}
    for cutoff in cutoffs:
        window = window_at(series, grid_start_ns, task, cutoff, context_steps, drivers=drivers)
        if skip_reason(window, task.min_context_fraction, task.max_last_gap_steps):
            continue
        actual = actual_after(series[task.target], grid_start_ns, step_ns, cutoff, task.horizon_steps)
        regime = regimes.horizon_regime(actual, threshold_w)
        if regime == regimes.UNKNOWN:
            continue
        sums = metrics.point_terms(actual, predict(window)).sum(axis=0)
        windows.setdefault(metrics.ALL, []).append(sums)
        windows.setdefault(regime, []).append(sums)
    return {k: np.array(v) for k, v in windows.items()}
