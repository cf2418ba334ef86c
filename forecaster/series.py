"""Reviewed table: series keys used in config -> where they live in InfluxDB (see docs/forecaster.md)."""

from __future__ import annotations

from dataclasses import dataclass

from bess_common.schema import IMPORT_GAP


@dataclass(frozen=True, slots=True)
class SeriesRef:
    """One telemetry series: measurement, field and extra tag filter (besides site)."""

    measurement: str
    field: str
    tags: tuple[tuple[str, str], ...] = ()


# Sign convention: battery power positive = charging (bess_common/schema.py).
SERIES: dict[str, SeriesRef] = {
    "battery_power_w": SeriesRef("system", "battery_power_w"),
    "battery_voltage_v": SeriesRef("system", "battery_voltage_v"),
    "battery_soc_pct": SeriesRef("system", "battery_soc_pct"),
    "pv_power_w": SeriesRef("system", "pv_w"),
    "load_power_w": SeriesRef("system", "load_w"),
}


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def mean_query(key: str, site: str, start_ns: int, end_ns: int, resolution: str) -> str:
    """InfluxQL: per-bucket means of one series over [start, end), gaps left out (fill(none))."""
    ref = SERIES[key]
    where = [f"\"site\" = '{_quote(site)}'"] + [f"\"{k}\" = '{_quote(v)}'" for k, v in ref.tags]
    return (
        f'SELECT mean("{ref.field}") AS "value" FROM "{ref.measurement}" WHERE {" AND ".join(where)} '
        f"AND time >= {start_ns} AND time < {end_ns} GROUP BY time({resolution}) fill(none)"
    )


def outage_query(key: str, site: str, end_ns: int) -> str:
    """InfluxQL: the outages an importer recorded for one series (IMPORT_GAP markers) before end_ns."""
    ref = SERIES[key]
    where = [f"\"site\" = '{_quote(site)}'", f"\"target\" = '{_quote(ref.measurement + '.' + ref.field)}'"]
    where += [f"\"{k}\" = '{_quote(v)}'" for k, v in ref.tags]
    return f'SELECT "state", "duration_s" FROM "{IMPORT_GAP}" WHERE {" AND ".join(where)} AND time < {end_ns}'
