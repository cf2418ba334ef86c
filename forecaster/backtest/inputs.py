"""What a backtest reads: the task's series on its grid, with --hold-last applied and stopped at the
outages the importer recorded (forecaster.backtest.hold), and the known-future drivers (forecaster.drivers)."""

from __future__ import annotations

import numpy as np

from forecaster.backtest.hold import hold_all, outage_buckets
from forecaster.backtest.plan import Plan
from forecaster.backtest.run import read_series
from forecaster.config import ForecasterSettings
from forecaster.drivers import Drivers
from forecaster.store import ForecastStore, read_task_drivers
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


def read_plan_drivers(store: ForecastStore, plan: Plan, settings: ForecasterSettings) -> Drivers | None:
    """The GX's plan and the PV forecast over the backtest's span, when the task uses them (else None)."""
    return read_task_drivers(store, settings, plan.task, plan.read_start_ns, plan.end_ns)
