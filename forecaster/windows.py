"""Pure windowing: regular grids with NaN gaps, context slicing and known-future covariates.

Leakage rule: a Window is built from the context (data strictly before the cut-off), the horizon's
*timestamps* and what was issued at or before the cut-off. Known-future covariates are computed from those
timestamps (time of day, day of week) or from the GX's plan and the PV forecast as known at the cut-off
(forecaster.drivers); measured values after the cut-off never enter a Window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from forecaster import drivers as known
from forecaster.durations import duration_s

NS = 1_000_000_000
DAY_S = 86400
WEEK_S = 7 * DAY_S


def grid_times(start_ns: int, step_ns: int, n: int) -> np.ndarray:
    """The n timestamps start, start+step, ... as int64 ns."""
    return start_ns + step_ns * np.arange(n, dtype=np.int64)


def to_regular_grid(points: Mapping[int, float], start_ns: int, step_ns: int, n: int) -> np.ndarray:
    """Place (ts_ns -> value) points on a regular grid; missing buckets are NaN, off-grid points dropped."""
    out = np.full(n, np.nan)
    for ts_ns, value in points.items():
        offset = ts_ns - start_ns
        if offset % step_ns or value is None:
            continue
        index = offset // step_ns
        if 0 <= index < n:
            out[index] = float(value)
    return out


def time_features(ts_ns: np.ndarray) -> dict[str, np.ndarray]:
    """Time of day and day of week (UTC) as sin/cos, computed from timestamps only."""
    seconds = ts_ns // NS
    tod = 2 * np.pi * (seconds % DAY_S) / DAY_S
    # 1970-01-01 was a Thursday; shift so that Monday 00:00 is phase 0.
    dow = 2 * np.pi * ((seconds + 3 * DAY_S) % WEEK_S) / WEEK_S
    return {"tod_sin": np.sin(tod), "tod_cos": np.cos(tod), "dow_sin": np.sin(dow), "dow_cos": np.cos(dow)}


@dataclass(frozen=True)
class Window:
    """One forecast window: the context up to the cut-off and the horizon's timestamps."""

    task: str
    cutoff_ns: int
    step_ns: int
    target: np.ndarray  # context of the target, oldest first, last value at cutoff - step
    past: dict[str, np.ndarray]  # history of every covariate (past-only and known-future), same length
    future: dict[str, np.ndarray]  # known-future covariates over the horizon (from timestamps only)
    horizon_ts_ns: np.ndarray
    known: tuple[str, ...] = field(default=())

    @property
    def horizon_steps(self) -> int:
        """Number of predicted steps."""
        return len(self.horizon_ts_ns)

    @property
    def lead_s(self) -> np.ndarray:
        """Lead of each predicted bucket: the time from the cut-off to the bucket's end, in seconds."""
        return ((self.horizon_ts_ns - self.cutoff_ns + self.step_ns) // NS).astype(np.int64)


def build_window(
    task: str,
    cutoff_ns: int,
    step_ns: int,
    context: Mapping[str, np.ndarray],
    *,
    target: str,
    past_covariates: Sequence[str],
    known_covariates: Sequence[str],
    horizon_steps: int,
    drivers: known.Drivers | None = None,
) -> Window:
    """Assemble a Window from context arrays (ending at the cut-off) and the horizon's timestamps.

    Driver covariates (forecaster.drivers): their history comes from `context` when it holds them (else it is
    rebuilt from `drivers`), their horizon from `drivers` as known at the cut-off (neutral without drivers)."""
    n = len(context[target])
    context_ts = grid_times(cutoff_ns - n * step_ns, step_ns, n)
    horizon_ts = grid_times(cutoff_ns, step_ns, horizon_steps)
    past = {key: np.asarray(context[key], dtype=float) for key in past_covariates}
    ctx_features = time_features(context_ts)
    fut_features = time_features(horizon_ts)
    driver_keys = [k for k in known_covariates if k in known.DRIVER_FEATURES]
    missing = [k for k in driver_keys if k not in context]
    ctx_features.update({k: np.asarray(context[k], dtype=float) for k in driver_keys if k in context})
    if missing:
        ctx_features.update(known.history(drivers, missing, int(context_ts[0]) if n else cutoff_ns, step_ns, n))
    fut_features.update(known.horizon(drivers, driver_keys, cutoff_ns, horizon_ts, step_ns))
    for key in known_covariates:
        past[key] = ctx_features[key]
    future = {key: fut_features[key] for key in known_covariates}
    return Window(
        task,
        cutoff_ns,
        step_ns,
        np.asarray(context[target], dtype=float),
        past,
        future,
        horizon_ts,
        tuple(known_covariates),
    )


def slice_context(
    series: Mapping[str, np.ndarray], grid_start_ns: int, step_ns: int, cutoff_ns: int, context_steps: int
) -> dict[str, np.ndarray]:
    """From long gridded series, the `context_steps` buckets strictly before the cut-off (NaN-padded)."""
    end = (cutoff_ns - grid_start_ns) // step_ns
    start = end - context_steps
    out = {}
    for key, values in series.items():
        pad = max(0, -start)
        part = values[max(0, start) : max(0, end)]
        out[key] = np.concatenate([np.full(pad, np.nan), part]) if pad else np.array(part, dtype=float)
    return out


def skip_reason(window: Window, min_fraction: float, max_last_gap_steps: int) -> str | None:
    """Why a window must not be forecast (too little data), or None when it is usable."""
    observed = np.isfinite(window.target)
    if not observed.any():
        return "no target data in the context"
    fraction = float(observed.mean())
    if fraction < min_fraction:
        return f"only {fraction:.0%} of the context has target data (need {min_fraction:.0%})"
    last_gap = len(observed) - 1 - int(np.flatnonzero(observed)[-1])
    if last_gap > max_last_gap_steps:
        return f"the target's last value is {last_gap} steps before the cut-off (max {max_last_gap_steps})"
    return None


def chronos_input(window: Window) -> dict[str, object]:
    """The dict form Chronos-2 expects: target, past_covariates (all), future_covariates (known only)."""
    return {"target": window.target, "past_covariates": dict(window.past), "future_covariates": dict(window.future)}


def duration_ns(text: str) -> int:
    """'1h' -> ns (same syntax as the config's durations)."""
    return duration_s(text) * NS


def iso(ts_ns: int) -> str:
    """ns -> ISO-8601 UTC with a Z, to the second (the one timestamp format of logs and manifests)."""
    return datetime.fromtimestamp(ts_ns // NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def floor_time(ts_ns: int, period_s: int) -> int:
    """Align a timestamp down to a multiple of the period (UTC epoch aligned)."""
    period_ns = period_s * NS
    return ts_ns - ts_ns % period_ns
