"""What a backtest reads: the task's series on its grid, with --hold-last applied and stopped at the
outages the importer recorded (forecaster.backtest.hold)."""

from __future__ import annotations

import numpy as np

from forecaster.backtest.hold import hold_all, outage_buckets
from forecaster.backtest.plan import Plan
from forecaster.backtest.run import read_series
from forecaster.store import ForecastStore
from forecaster.windows import NS


def read_held_series(store: ForecastStore, plan: Plan, hold_last_steps: int) -> dict[str, np.ndarray]:
    """read_series, then each value carried over at most `hold_last_steps` empty buckets, never through a
    recorded outage (no outage query when the hold is off)."""
    series = read_series(store, plan)
    if hold_last_steps <= 0:
        return series
    outages = store.read_outages(list(series), plan.read_start_ns + plan.n_steps * plan.task.resolution_s * NS)
    step_ns = plan.task.resolution_s * NS
    blocked = {
        key: outage_buckets(outages.get(key, []), values, plan.read_start_ns, step_ns) for key, values in series.items()
    }
    return hold_all(series, hold_last_steps, blocked)
