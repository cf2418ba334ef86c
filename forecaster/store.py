"""The InfluxDB edge of the forecaster: read gridded telemetry, write/read forecasts, write scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bess_common.influx import InfluxClient
from bess_common.lineproto import to_lines
from bess_common.sample import Sample
from bess_common.schema import FORECAST, GX_PLAN, PV_FORECAST
from forecaster.config import ForecasterSettings, ForecastTask
from forecaster.drivers import Drivers, issues_from_rows, snapshots_from_rows, uses_drivers
from forecaster.series import mean_query, outage_query
from forecaster.windows import NS, to_regular_grid

WRITE_BATCH_LINES = 5000
PV_ISSUES_BEFORE_NS = 2 * 86400 * NS  # PV issues read from this long before the span (the newest covers it)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


class ForecastStore:
    """Reads and writes through one InfluxClient (given by the caller)."""

    def __init__(self, client: InfluxClient, site: str) -> None:
        self.client = client
        self.site = site

    def read_grid(self, keys: Sequence[str], start_ns: int, step_s: int, n: int) -> dict[str, np.ndarray]:
        """Per-bucket means of each series over [start, start + n·step), on a regular grid with NaN gaps."""
        end_ns = start_ns + n * step_s * NS
        out = {}
        for key in dict.fromkeys(keys):
            points: dict[int, float] = {}
            for series in self.client.query(mean_query(key, self.site, start_ns, end_ns, f"{step_s}s")):
                for row in series.rows():
                    if row.get("value") is not None:
                        points[int(row["time"])] = float(row["value"])
            out[key] = to_regular_grid(points, start_ns, step_s * NS, n)
        return out

    def read_outages(self, keys: Sequence[str], end_ns: int) -> dict[str, list[tuple[int, float | None]]]:
        """Per series, the outages a recording reported before end_ns: (start ns, duration s or None)."""
        out: dict[str, list[tuple[int, float | None]]] = {}
        for key in dict.fromkeys(keys):
            found: list[tuple[int, float | None]] = []
            for series in self.client.query(outage_query(key, self.site, end_ns)):
                for row in series.rows():
                    duration = row.get("duration_s")
                    found.append((int(row["time"]), None if duration is None else float(duration)))
            out[key] = found
        return out

    def _rows(self, q: str) -> list[dict[str, object]]:
        return [row for series in self.client.query(q) for row in series.rows()]

    def read_drivers(self, start_ns: int, end_ns: int, *, time_zone: str = "UTC", pv_provider: str = "") -> Drivers:
        """The GX's plan snapshots and the PV forecast issues known over [start, end): every one stamped in the
        span, plus the snapshot in force at its start and the issues of the two days before it."""
        site = f"\"site\" = '{_quote(self.site)}'"
        before = self._rows(f'SELECT * FROM "{GX_PLAN}" WHERE {site} AND time < {start_ns} ORDER BY time DESC LIMIT 1')
        plan_from = int(before[0]["time"]) if before else start_ns  # type: ignore[call-overload]
        plans = self._rows(f'SELECT * FROM "{GX_PLAN}" WHERE {site} AND time >= {plan_from} AND time < {end_ns}')
        provider = f" AND \"provider\" = '{_quote(pv_provider)}'" if pv_provider else ""
        issues = self._rows(
            f'SELECT * FROM "{PV_FORECAST}" WHERE {site}{provider} '
            f"AND time >= {start_ns - PV_ISSUES_BEFORE_NS} AND time < {end_ns}"
        )
        return Drivers(tuple(snapshots_from_rows(plans)), tuple(issues_from_rows(issues)), time_zone)

    def write_samples(self, samples: Sequence[Sample]) -> int:
        """Write in batches; returns the number of lines written. Errors propagate (retried next cycle)."""
        lines = to_lines(samples)
        for i in range(0, len(lines), WRITE_BATCH_LINES):
            self.client.write(lines[i : i + WRITE_BATCH_LINES])
        return len(lines)

    def last_cutoff(self, task: str, since_ns: int, run: str = "live") -> int | None:
        """The newest cut-off of the task's stored forecasts predicted after `since_ns`, or None."""
        q = (
            f'SELECT last("cutoff_ns") FROM "{FORECAST}" WHERE "site" = \'{_quote(self.site)}\' '
            f"AND \"task\" = '{_quote(task)}' AND \"run\" = '{_quote(run)}' AND time >= {since_ns}"
        )
        values = [row.get("last") for series in self.client.query(q) for row in series.rows()]
        return int(values[0]) if values and values[0] is not None else None

    def read_forecasts(self, task: str, start_ns: int, end_ns: int, run: str = "live") -> pd.DataFrame:
        """Stored forecasts with predicted time in [start, end) as a ForecastFrame-like table."""
        q = (
            f'SELECT * FROM "{FORECAST}" WHERE "site" = \'{_quote(self.site)}\' AND "task" = \'{_quote(task)}\' '
            f"AND \"run\" = '{_quote(run)}' AND time >= {start_ns} AND time < {end_ns}"
        )
        rows = [row for series in self.client.query(q) for row in series.rows()]
        if not rows:
            return pd.DataFrame()
        frame = pd.DataFrame(rows).rename(columns={"time": "ts_ns"})
        frame["ts_ns"] = frame["ts_ns"].astype("int64")
        frame["cutoff_ns"] = frame["cutoff_ns"].astype("int64")
        return frame


def read_task_drivers(
    store: ForecastStore, settings: ForecasterSettings, task: ForecastTask, start_ns: int, end_ns: int
) -> Drivers | None:
    """The known-future drivers stamped in [start, end) (plus the plan in force at start), or None when the
    task uses none (nothing is read)."""
    if not uses_drivers(task.known_covariates):
        return None
    cfg = settings.drivers
    return store.read_drivers(start_ns, end_ns, time_zone=cfg.time_zone, pv_provider=cfg.pv_provider)
