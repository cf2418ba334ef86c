"""The collector end to end: real influxd + mosquitto, the simulated GX, the collector as a subprocess, >= 30 s.

Asserted from InfluxDB: for >= 29 of 30 seconds the shunt voltage, current, power and SoC exist; each of the
16 cells has a voltage and a balancing flag every second (dbus-serialbattery, the default BMS profile); the
values match the simulator's truth within the
register / payload quantization; and the GX never received a Modbus write or an MQTT W/ message.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bess_common.influx import InfluxClient
from collector.simulator.gx import GxSimulator
from collector.simulator.recording import ModbusRequest, MqttMessage
from deploy.localservices import InfluxServer, MosquittoServer
from tests.integration.pipeline import (
    SECOND_NS,
    collector_running,
    log_events,
    next_window,
    whole_seconds,
    write_config,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
CELLS = 16
WINDOW_S = 30
# field -> (GX path, tolerance): the Modbus register step (the grid falls back to Modbus when MQTT is stale).
SHUNT = {
    "voltage_v": ("/Dc/0/Voltage", 0.01),
    "current_a": ("/Dc/0/Current", 0.1),
    "power_w": ("/Dc/0/Power", 1.0),
    "soc_pct": ("/Soc", 0.1),
}
CELL = {"voltage_v": ("/Voltages/Cell{n}", 1e-3), "balancing": ("/Balances/Cell{n}", 0.0)}


@pytest.fixture
def gx(mosquitto: MosquittoServer) -> Iterator[GxSimulator]:
    sim = GxSimulator(seed=7, modbus_port=0, mqtt_host="127.0.0.1", mqtt_port=mosquitto.port, cells=CELLS).start()
    yield sim
    sim.stop()


def _matches_truth(sim: GxSimulator, role: str, path: str, t_s: int, *, value: float, age_s: float, tol: float) -> bool:
    """The value equals the truth of some second it could have been sampled at (t - age - 2 .. t)."""
    oldest = t_s - math.ceil(age_s) - 2
    for s in range(t_s, oldest - 1, -1):
        truth = sim.truth(s).get((role, path))
        if isinstance(truth, int | float) and abs(float(truth) - value) <= tol + 1e-9:
            return True
    return False


def _rows(client: InfluxClient, query: str) -> list[dict[str, object]]:
    return [{**row, **s.tags} for s in client.query(query) for row in s.rows()]


def test_when_collector_runs_30s_then_shunt_and_every_cell_land_each_second_matching_truth(
    influx_server: InfluxServer, influx: InfluxClient, mosquitto: MosquittoServer, gx: GxSimulator, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "c.toml",
        influx_server.url,
        modbus_port=gx.modbus_port,
        mqtt_port=mosquitto.port,
        buffer_dir=tmp_path / "buffer",
    )
    with collector_running(config) as collector:
        since = time.time_ns()

        def all_cells_seen() -> bool:
            found = influx.query(f"SELECT count(voltage_v) FROM cell WHERE time >= {since} GROUP BY cell")
            return len(found) == CELLS

        wait_until(all_cells_seen, 60, "rows for all 16 cells")
        start, end = next_window(WINDOW_S)
    window = set(whole_seconds(start, end))
    where = f"time >= {start} AND time < {end}"

    shunt = _rows(influx, f"SELECT * FROM battery WHERE device = 'shunt' AND {where}")
    complete = [r for r in shunt if all(r.get(f) is not None for f in SHUNT)]
    assert len({int(str(r["time"])) for r in complete} & window) >= WINDOW_S - 1
    for row in complete:
        t_s = int(str(row["time"])) // SECOND_NS
        for name, (path, tol) in SHUNT.items():
            value = float(str(row[name]))
            assert _matches_truth(gx, "shunt", path, t_s, value=value, age_s=float(str(row["age_s"])), tol=tol), (
                name,
                t_s,
                value,
            )

    cells = _rows(influx, f"SELECT voltage_v, balancing, age_s FROM cell WHERE {where} GROUP BY cell")
    for n in range(1, CELLS + 1):
        mine = [r for r in cells if r["cell"] == str(n)]
        have = {int(str(r["time"])) for r in mine if r["voltage_v"] is not None and r["balancing"] is not None}
        assert have == window, f"cell {n}: missing seconds {sorted(window - have)[:5]}"
        for row in mine:
            t_s = int(str(row["time"])) // SECOND_NS
            for name, (path, tol) in CELL.items():
                value = float(str(row[name]))
                age_s = float(str(row["age_s"]))
                assert _matches_truth(gx, "bms", path.format(n=n), t_s, value=value, age_s=age_s, tol=tol), (
                    n,
                    name,
                    t_s,
                    value,
                )

    received = gx.received
    modbus = [r for r in received if isinstance(r, ModbusRequest)]
    mqtt = [r for r in received if isinstance(r, MqttMessage)]
    assert modbus and mqtt, "the collector talked to the GX over both protocols"
    assert not [r for r in modbus if r.is_write], "a Modbus write reached the GX"
    assert not [r for r in mqtt if r.is_write], "an MQTT W/ message reached the GX"
    assert "collector_stopped" in log_events(collector.log())
