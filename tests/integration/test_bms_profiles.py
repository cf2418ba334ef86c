"""Every BMS family end to end: the simulated GX publishes its cells as that family really does (`--bms`),
the collector (a subprocess, MQTT + Modbus) maps them through collector/gx/fields.csv, and what lands in
InfluxDB is what docs/schema.md's table "What each BMS family gives" says, matching the simulator's truth."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bess_common.influx import InfluxClient
from collector.simulator.gx import GxSimulator
from deploy.localservices import InfluxServer, MosquittoServer
from tests.integration.pipeline import collector_running, write_config
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
CELLS = 16
# profile -> (cell rows expected as (battery tag, cell tag), cell fields, cell fields that must be absent)
EXPECTED: dict[str, tuple[set[tuple[str | None, str]], set[str], set[str]]] = {
    "serialbattery": ({(None, str(n)) for n in range(1, 17)}, {"voltage_v", "balancing"}, {"temperature_c"}),
    "serialbattery-format2": ({(None, str(n)) for n in range(1, 17)}, {"voltage_v"}, {"balancing", "temperature_c"}),
    "serialbattery-format3": ({(None, str(n)) for n in range(1, 17)}, {"voltage_v", "balancing"}, {"temperature_c"}),
    "lynx-ng": ({(str(b), str(n)) for b in range(1, 5) for n in range(1, 5)}, {"voltage_v"}, {"balancing"}),
    "can": (set(), set(), set()),
}
BMS_FIELDS = {
    "serialbattery": {"temperature_1_c", "temperature_4_c", "mos_temperature_c", "alarm_high_cell_voltage"},
    "serialbattery-format2": {"temperature_2_c", "mos_temperature_c"},
    "serialbattery-format3": {"temperature_3_c", "mos_temperature_c"},
    "lynx-ng": {"error_smartlithium_communication", "error_smartlithium_invalid_configuration", "alarm_contactor"},
    "can": {"min_cell_voltage_v", "max_cell_voltage_v", "min_cell_temperature_c", "max_cell_temperature_c"},
}
COMMON_BMS_FIELDS = {"history_min_cell_voltage_v", "history_max_cell_voltage_v", "alarm", "alarm_low_cell_voltage"}


@pytest.fixture(params=list(EXPECTED))
def gx(request: pytest.FixtureRequest, mosquitto: MosquittoServer) -> Iterator[GxSimulator]:
    sim = GxSimulator(
        seed=3, modbus_port=0, mqtt_host="127.0.0.1", mqtt_port=mosquitto.port, cells=CELLS, bms=request.param
    ).start()
    yield sim
    sim.stop()


def _rows(client: InfluxClient, query: str) -> list[dict[str, object]]:
    return [{**row, **s.tags} for s in client.query(query) for row in s.rows()]


def _near_truth(sim: GxSimulator, path: str, t_s: int, value: float) -> bool:
    return any(abs(float(str(sim.truth(s).get(("bms", path)))) - value) < 1e-6 for s in range(t_s - 12, t_s + 1))


def test_when_the_gx_has_this_bms_then_its_cells_land_as_the_schema_says(
    influx_server: InfluxServer, influx: InfluxClient, mosquitto: MosquittoServer, gx: GxSimulator, tmp_path: Path
) -> None:
    cells, cell_fields, absent = EXPECTED[gx.bms]
    config = write_config(
        tmp_path / "c.toml",
        influx_server.url,
        modbus_port=gx.modbus_port,
        mqtt_port=mosquitto.port,
        buffer_dir=tmp_path / "buffer",
    )
    with collector_running(config):
        since = time.time_ns()
        wanted = BMS_FIELDS[gx.bms] | COMMON_BMS_FIELDS

        def landed() -> bool:
            bms = _rows(influx, f"SELECT * FROM battery WHERE device = 'bms' AND time >= {since}")
            have_bms = any(all(r.get(f) is not None for f in wanted) for r in bms)
            found = _rows(influx, f"SELECT * FROM cell WHERE time >= {since} GROUP BY battery, cell")
            have = {(r.get("battery") or None, str(r["cell"])) for r in found if r.get("voltage_v") is not None}
            return have_bms and have == cells

        wait_until(landed, 60, f"the {gx.bms} profile's rows")

    rows = _rows(influx, f"SELECT * FROM cell WHERE time >= {since} GROUP BY battery, cell")
    assert {(r.get("battery") or None, str(r["cell"])) for r in rows} == cells
    seen_fields = {f for r in rows for f in cell_fields | absent if r.get(f) is not None}
    assert seen_fields == cell_fields
    for row in rows[-40:]:
        t_s = int(str(row["time"])) // 1_000_000_000
        battery, cell = row.get("battery"), row["cell"]
        path = f"/Battery/{battery}/Cell/{cell}/Voltage" if battery else None
        path = path or {"serialbattery": "/Voltages/Cell{n}"}.get(gx.bms, "/Cell/{n}/Volts").format(n=cell)
        if row.get("voltage_v") is not None:
            assert _near_truth(gx, path, t_s, float(str(row["voltage_v"]))), (path, t_s, row["voltage_v"])
    if gx.bms == "lynx-ng":  # per-cell temperatures only of the battery /Battery/Request/Id selects (1)
        with_temperature = {(r.get("battery"), r["cell"]) for r in rows if r.get("temperature_c") is not None}
        assert with_temperature == {("1", str(n)) for n in range(1, 5)}
