"""Simulated site history on the forecaster's 1-minute grid, straight from the simulator's physics (no
InfluxDB), for benchmarks and tests: the series keys of forecaster/series.py, battery power + = charging."""

from __future__ import annotations

import numpy as np

from collector.simulator.physics import BessPhysics
from collector.simulator.profiles import DAY_S

NS = 1_000_000_000


def minute_series(seed: int, first_day: int, days: int) -> tuple[dict[str, np.ndarray], int]:
    """(series, grid start ns): per-minute means of `days` simulated days from UTC day `first_day`."""
    physics = BessPhysics(seed, cache_days=1)
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("battery_power_w", "battery_voltage_v", "battery_soc_pct", "pv_power_w", "load_power_w")
    }
    for day in range(first_day, first_day + days):
        a = physics.day_arrays(day)

        def minute(x: np.ndarray) -> np.ndarray:
            return np.asarray(x, dtype=float).reshape(-1, 60).mean(axis=1)

        parts["battery_power_w"].append(minute(a.pack_v * a.current_a))
        parts["battery_voltage_v"].append(minute(a.pack_v))
        parts["battery_soc_pct"].append(minute(100.0 * a.soc))
        parts["pv_power_w"].append(minute(a.pv_w))
        parts["load_power_w"].append(minute(a.load_w))
    return {k: np.concatenate(v) for k, v in parts.items()}, first_day * DAY_S * NS


def system_lines(series: dict[str, np.ndarray], start_ns: int, site: str = "shop") -> list[str]:
    """The minute series as `system` line protocol (the fields the forecaster reads)."""
    ts = start_ns + 60 * NS * np.arange(series["battery_power_w"].size, dtype=np.int64)
    columns = zip(
        ts,
        series["battery_power_w"],
        series["battery_voltage_v"],
        series["battery_soc_pct"],
        series["pv_power_w"],
        series["load_power_w"],
        strict=True,
    )
    return [
        f"system,site={site} battery_power_w={p:.1f},battery_voltage_v={v:.3f},battery_soc_pct={s:.2f},"
        f"pv_w={pv:.1f},load_w={load:.1f} {t}"
        for t, p, v, s, pv, load in columns
    ]
