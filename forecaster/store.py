"""The InfluxDB edge of the forecaster: read gridded telemetry, write/read forecasts, write scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bess_common.influx import InfluxClient
from bess_common.lineproto import to_lines
from bess_common.sample import Sample
from bess_common.schema import FORECAST
from forecaster.series import mean_query, outage_query
from forecaster.windows import NS, to_regular_grid

WRITE_BATCH_LINES = 5000


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
