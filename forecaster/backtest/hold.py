"""Hold-last-value for state-change recordings (pure).

Home Assistant writes a row only when a state changes: a value holds until the next row. On a regular grid
of `GROUP BY time()` means, a long steady state (a battery idle all night) is therefore a run of empty
buckets, which the forecaster would treat as missing data. `--hold-last N` carries each value forward
over at most N empty buckets, which is what the recording means. Longer holes stay gaps."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def hold_last(values: np.ndarray, max_steps: int) -> np.ndarray:
    """Forward-fill NaN buckets with the last finite value, over at most `max_steps` buckets per hole."""
    out = np.array(values, dtype=float)
    if max_steps <= 0 or out.size == 0:
        return out
    finite = np.isfinite(out)
    last = np.where(finite, np.arange(out.size), -1)
    np.maximum.accumulate(last, out=last)
    age = np.arange(out.size) - last
    fill = ~finite & (last >= 0) & (age <= max_steps)
    out[fill] = out[last[fill]]
    return out


def hold_all(series: Mapping[str, np.ndarray], max_steps: int) -> dict[str, np.ndarray]:
    """hold_last on every series."""
    return {key: hold_last(values, max_steps) for key, values in series.items()}
