"""Quirks of the GX's Modbus server as Victron ships it (victronenergy/dbus_modbustcp), end to end: the
simulated GX with a settable clock, the collector as a subprocess, real influxd; assertions read InfluxDB."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from bess_common.influx import InfluxClient
from collector.simulator.gx import GxSimulator
from deploy.localservices import InfluxServer
from tests.integration.pipeline import SECOND_NS, CollectorProcess, write_config
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
DAY0_S = 1_800_000_000 // 86400 * 86400  # a UTC midnight


class ShiftedClock:
    """The simulator's clock: real time moved to a chosen simulated second (settable while running)."""

    def __init__(self, at_s: int) -> None:
        self.offset_s = 0.0
        self.go(at_s)

    def go(self, at_s: int) -> None:
        self.offset_s = at_s - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset_s


def _find(sim: GxSimulator, ok: Callable[[Mapping[tuple[str, str], object]], bool], seconds: int) -> int:
    """The first 10-minute step of day 0 from which `ok` holds for `seconds` simulated seconds."""
    for start in range(DAY0_S, DAY0_S + 86400, 600):
        if all(ok(sim.truth(start + k)) for k in range(seconds)):
            return start
    raise AssertionError("no such stretch on day 0")


def _shunt_rows(influx: InfluxClient, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
    query = f"SELECT * FROM battery WHERE device = 'shunt' AND time >= {start_ns} AND time < {end_ns}"
    return [row for s in influx.query(query) for row in s.rows()]


def _collector(tmp_path: Path, influx_server: InfluxServer, sim: GxSimulator, **extra: Any) -> CollectorProcess:
    config = write_config(
        tmp_path / "c.toml", influx_server.url, modbus_port=sim.modbus_port, mqtt_port=None,
        buffer_dir=tmp_path / "buffer", **extra,
    )  # fmt: skip
    return CollectorProcess(config, tmp_path / "collector.log").start()


def test_when_time_to_go_reads_0_over_modbus_then_no_value_lands_never_0_s(
    influx_server: InfluxServer, influx: InfluxClient, tmp_path: Path
) -> None:
    """Registers 303 and 846 read 0 while the battery is not discharging (an invalid D-Bus value is served
    as 0, dbus_modbustcp mappings.cpp `Mappings::getValue`): that is "not applicable", not 0 s."""
    clock = ShiftedClock(DAY0_S)
    sim = GxSimulator(seed=3, modbus_port=0, mqtt_port=None, cells=4, clock=clock)
    idle_s = _find(sim, lambda v: v[("shunt", "/TimeToGo")] is None, 40)
    discharging_s = _find(sim, lambda v: isinstance(v[("shunt", "/TimeToGo")], float), 40)
    clock.go(idle_s)
    sim.start()
    collector = _collector(tmp_path, influx_server, sim, ttl_shunt_s=3.0)
    try:
        wait_until(lambda: any(r.get("voltage_v") for r in _shunt_rows(influx, 0, time.time_ns())), 40, "shunt rows")
        idle = (time.time_ns() // SECOND_NS + 1) * SECOND_NS
        time.sleep(5.0)
        clock.go(discharging_s)
        served = [sim.truth(discharging_s + k)[("shunt", "/TimeToGo")] for k in range(30)]
        busy = time.time_ns()
        wait_until(lambda: any(r.get("time_to_go_s") for r in _shunt_rows(influx, busy, time.time_ns())), 15, "TTG")
        end = time.time_ns()
    finally:
        code = collector.stop()
        sim.stop()
    assert code == 0, collector.log()[-3000:]
    idle_rows = _shunt_rows(influx, idle, busy)
    assert len(idle_rows) >= 4 and all(r.get("voltage_v") is not None for r in idle_rows), idle_rows
    assert [r["time_to_go_s"] for r in idle_rows if r.get("time_to_go_s") is not None] == [], "0 s landed"
    landed = [float(str(r["time_to_go_s"])) for r in _shunt_rows(influx, busy, end) if r.get("time_to_go_s")]
    truth = [float(str(v)) for v in served]
    assert landed and all(min(truth) - 100 <= v <= max(truth) + 100 for v in landed), (landed, truth)


def _system_rows(influx: InfluxClient, start_ns: int, end_ns: int) -> list[dict[str, object]]:
    query = f"SELECT * FROM system WHERE time >= {start_ns} AND time < {end_ns}"
    return [row for s in influx.query(query) for row in s.rows()]


def test_when_a_phase_carries_more_than_32_7_kw_then_the_32_bit_registers_land_it(
    influx_server: InfluxServer, influx: InfluxClient, tmp_path: Path
) -> None:
    """Grid, consumption and AC-PV per phase come from the 32-bit registers 884-912 (dbus_modbustcp v1.0.85
    on): the 16-bit ones at 808-822 wrap (a float D-Bus value) or clamp above 32,767 W."""
    sim = GxSimulator(seed=3, modbus_port=0, mqtt_port=None, cells=4)
    big = {"/Ac/Grid/L1/Power": 40000.0, "/Ac/Consumption/L1/Power": 45000.0, "/Ac/PvOnGrid/L2/Power": 36000.0}
    for path, watts in big.items():
        sim.faults.pin("system", path, watts)
    sim.start()
    collector = _collector(tmp_path, influx_server, sim)
    try:
        since = time.time_ns()
        wait_until(lambda: len(_system_rows(influx, since, time.time_ns())) >= 4, 40, "system rows")
        end = time.time_ns()
    finally:
        code = collector.stop()
        sim.stop()
    assert code == 0, collector.log()[-3000:]
    rows = [r for r in _system_rows(influx, since, end) if r.get("grid_l1_w") is not None]
    assert len(rows) >= 3
    for row in rows:
        assert (row["grid_l1_w"], row["load_l1_w"], row["pv_ac_grid_l2_w"]) == (40000.0, 45000.0, 36000.0), row
