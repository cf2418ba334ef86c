"""Hold-last-value for state-change recordings (pure).

Home Assistant writes a row only when a state changes: a value holds until the next row. On a regular grid
of `GROUP BY time()` means, a long steady state (a battery idle all night) is therefore a run of empty
buckets, which the forecaster would treat as missing data. `--hold-last N` carries each value forward
over at most N empty buckets, which is what the recording means. Longer holes stay gaps.

An outage the recording reports (Home Assistant `unknown` / `unavailable`, kept by the importer as
`import_gap` markers with their duration) ends a hold: the empty buckets it touches stay gaps, so the last
value is never carried through a sensor outage. A marker without a duration (the recording ended in the
outage) blocks until the next value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def hold_last(values: np.ndarray, max_steps: int, blocked: np.ndarray | None = None) -> np.ndarray:
    """Forward-fill NaN buckets with the last finite value, over at most `max_steps` buckets per hole;
    never into a `blocked` bucket (an outage), and never past one."""
    out = np.array(values, dtype=float)
    if max_steps <= 0 or out.size == 0:
        return out
    finite = np.isfinite(out)
    stop = np.zeros(out.size, dtype=bool) if blocked is None else np.asarray(blocked, dtype=bool) & ~finite
    index = np.arange(out.size)
    last = np.where(finite | stop, index, -1)  # a blocked bucket is a source of nothing
    np.maximum.accumulate(last, out=last)
    age = index - last
    fill = ~finite & ~stop & (last >= 0) & (age <= max_steps)
    fill[fill] = finite[last[fill]]
    out[fill] = out[last[fill]]
    return out


def outage_buckets(
    outages: Sequence[tuple[int, float | None]], values: np.ndarray, start_ns: int, step_ns: int
) -> np.ndarray:
    """The buckets of a grid that the outages (start ns, duration s or None) touch; an outage without a
    duration runs to the next finite bucket after its start."""
    n = len(values)
    blocked = np.zeros(n, dtype=bool)
    finite = np.isfinite(np.asarray(values, dtype=float))
    for begin_ns, duration_s in outages:
        first = (begin_ns - start_ns) // step_ns
        if duration_s is not None:
            end_ns = begin_ns + round(duration_s * 1e9)
            stop = -((start_ns - end_ns) // step_ns)  # ceil: the first bucket starting at or after the end
        else:
            later = np.flatnonzero(finite[max(first + 1, 0) :])
            stop = max(first + 1, 0) + int(later[0]) if later.size else n
        lo, hi = max(int(first), 0), min(int(stop), n)
        if lo < hi:
            blocked[lo:hi] = True
    return blocked


def hold_all(
    series: Mapping[str, np.ndarray], max_steps: int, blocked: Mapping[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """hold_last on every series (with its outage buckets, when given)."""
    blocked = blocked or {}
    return {key: hold_last(values, max_steps, blocked.get(key)) for key, values in series.items()}
