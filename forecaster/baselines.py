"""Baselines: persistence (last value) and seasonal naive (same time yesterday), with empirical quantiles.

The point forecast is exact (last value / value one season ago); the quantile spread comes from the
context's own h-step (or seasonal) differences, so the baselines can be scored on every metric.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forecaster.windows import Window

MIN_SPREAD_DIFFS = 10  # fewer differences than this cannot give a spread (q0.1 would equal q0.9)


def _spread(diffs: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    finite = diffs[np.isfinite(diffs)]
    if finite.size < 2:
        return np.zeros(len(levels))
    spread = np.quantile(finite, levels)
    return np.asarray(spread - np.quantile(finite, 0.5))  # centred: the median stays the point forecast


def persistence(window: Window, levels: Sequence[float]) -> np.ndarray:
    """Quantiles (len(levels), H): last observed value, spread from the context's h-step changes."""
    y = window.target
    finite = np.flatnonzero(np.isfinite(y))
    if finite.size == 0:
        raise ValueError("persistence needs at least one observed value")
    last = float(y[finite[-1]])
    horizon = window.horizon_steps
    out = np.empty((len(levels), horizon))
    for h in range(1, horizon + 1):
        diffs = y[h:] - y[:-h] if h < y.size else np.array([])
        out[:, h - 1] = last + _spread(diffs, levels)
    return out


def seasonal_naive(window: Window, levels: Sequence[float], season_steps: int) -> np.ndarray:
    """Quantiles (len(levels), H): the value one season earlier, spread from the seasonal differences."""
    y = window.target
    need = season_steps + MIN_SPREAD_DIFFS
    if y.size < need:
        raise ValueError(
            f"seasonal naive needs {need} steps of context (one season of {season_steps} steps plus "
            f"{MIN_SPREAD_DIFFS} for its spread), have {y.size}"
        )
    horizon = window.horizon_steps
    index = y.size - season_steps + (np.arange(horizon) % season_steps)
    point = y[index]
    missing = ~np.isfinite(point)
    if missing.all():
        raise ValueError("no data one season before the horizon")
    if missing.any():  # fill holes with the nearest earlier seasonal value, else the last observation
        finite = np.flatnonzero(np.isfinite(y))
        point = np.where(missing, float(y[finite[-1]]), point)
    diffs = y[season_steps:] - y[:-season_steps]
    if int(np.isfinite(diffs).sum()) < MIN_SPREAD_DIFFS:
        raise ValueError(f"seasonal naive has fewer than {MIN_SPREAD_DIFFS} day-over-day differences for its spread")
    spread = _spread(diffs, levels)
    return point[None, :] + spread[:, None]
