"""Both sources and the grid against the GX simulator (real mosquitto): values match the simulator's
truth, every cell is discovered, device drops and garbage are handled, nothing is ever written."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from bess_common.sample import Sample
from collector.config import CollectorSettings, GxSettings
from collector.grid import Grid
from collector.simulator.gx import GxSimulator
from collector.simulator.recording import ModbusRequest, MqttMessage
from collector.sources.modbus import ModbusSource
from collector.sources.mqtt import MqttSource
from deploy.localservices import MosquittoServer
from tests.integration.test_sources_discover import discover
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

CELLS = 16
TTL = {"shunt": 8.0, "cell": 10.0, "system": 8.0}


@pytest.fixture
def sim(mosquitto: MosquittoServer) -> Iterator[GxSimulator]:
    gx = GxSimulator(seed=3, modbus_port=0, mqtt_port=mosquitto.port, cells=CELLS, heartbeat_s=1.0).start()
    try:
        yield gx
    finally:
        gx.stop()


def rows(grid: Grid) -> list[Sample]:
    return grid.snapshot(time.time_ns(), time.monotonic())


def row(grid: Grid, measurement: str, **tags: str) -> Sample | None:
    return next(
        (s for s in rows(grid) if s.measurement == measurement and all(s.tags.get(k) == v for k, v in tags.items())),
        None,
    )


def settings(sim: GxSimulator, mosquitto: MosquittoServer) -> tuple[GxSettings, CollectorSettings]:
    assert sim.modbus_port is not None
    gx = GxSettings(host="127.0.0.1", modbus_port=sim.modbus_port, mqtt_port=mosquitto.port)
    return gx, CollectorSettings(stall_timeout_s=4.0)


@pytest.fixture
def running(sim: GxSimulator, mosquitto: MosquittoServer) -> Iterator[tuple[Grid, MqttSource, ModbusSource]]:
    grid = Grid("shop", TTL)
    mqtt_source, modbus_source = (
        MqttSource(*settings(sim, mosquitto)),
        ModbusSource(*settings(sim, mosquitto), absent_probe_s=2.0),
    )
    mqtt_source.start(grid.apply)
    modbus_source.start(grid.apply)
    try:
        wait_until(lambda: mqtt_source.state()["bms"] == "connected", timeout_s=15)
        yield grid, mqtt_source, modbus_source
    finally:
        mqtt_source.stop()
        modbus_source.stop()


def test_when_running_then_grid_matches_truth_with_every_cell(
    sim: GxSimulator, running: tuple[Grid, MqttSource, ModbusSource]
) -> None:
    grid, mqtt_source, modbus_source = running
    wait_until(lambda: grid.cell_count() == CELLS, timeout_s=10)
    time.sleep(1.5)
    shunt = row(grid, "battery", device="shunt")
    assert shunt is not None and float(shunt.fields["age_s"]) < TTL["shunt"]
    held = sim.truth(int(time.time()))
    nulls = sum(1 for (role, _path), value in held.items() if role == "shunt" and value is None)
    assert int(shunt.fields["stale_fields"]) <= nulls  # only values the GX itself calls invalid are missing
    now = int(time.time())
    truths = [sim.truth(t).get(("shunt", "/Dc/0/Voltage")) for t in range(now - 10, now + 1)]
    assert any(abs(float(shunt.fields["voltage_v"]) - float(v)) < 1e-6 for v in truths if v is not None)
    cells = [s for s in rows(grid) if s.measurement == "cell"]
    assert sorted(int(s.tags["cell"]) for s in cells) == list(range(1, CELLS + 1))
    assert all("voltage_v" in s.fields for s in cells)
    system = row(grid, "system")
    assert system is not None and "battery_power_w" in system.fields
    received = sim.received
    assert received and not [r for r in received if r.is_write]
    assert {r.function_code for r in received if isinstance(r, ModbusRequest)} == {3}
    assert all(r.topic.startswith(f"R/{sim.portal_id}/") for r in received if isinstance(r, MqttMessage))
    assert modbus_source.state()["shunt"] == "connected"
    assert mqtt_source.portal == sim.portal_id


def test_when_bms_drops_and_returns_then_absent_then_back(
    sim: GxSimulator, running: tuple[Grid, MqttSource, ModbusSource]
) -> None:
    grid, mqtt_source, modbus_source = running
    wait_until(lambda: grid.cell_count() == CELLS, timeout_s=10)
    sim.faults.drop_device("bms")
    wait_until(lambda: mqtt_source.state()["bms"] == "absent" and modbus_source.state()["bms"] == "absent")
    bms = row(grid, "battery", device="bms")
    assert bms is not None and "voltage_v" not in bms.fields and int(bms.fields["stale_fields"]) > 0
    assert grid.cell_count() == 0
    sim.faults.restore_device("bms")
    wait_until(lambda: grid.cell_count() == CELLS, timeout_s=15)
    wait_until(
        lambda: mqtt_source.state()["bms"] == "connected" and modbus_source.state()["bms"] == "connected", timeout_s=15
    )


@pytest.mark.parametrize("kind", ["non_json", "wrong_type", "nan", "oversized", "unknown_topic"])
def test_when_simulator_sends_garbage_then_counted_and_never_data(
    sim: GxSimulator, running: tuple[Grid, MqttSource, ModbusSource], kind: str
) -> None:
    grid, mqtt_source, _ = running
    before = mqtt_source.counters()
    sim.faults.send_garbage(kind)
    expected = "unmapped" if kind == "unknown_topic" else f"garbage_{kind}"
    wait_until(lambda: mqtt_source.counters().get(expected, 0) > before.get(expected, 0), timeout_s=5)
    for sample in rows(grid):
        assert all(not isinstance(v, str) for v in sample.fields.values())
        assert all(math.isfinite(v) for v in sample.fields.values() if isinstance(v, float))
    assert mqtt_source.state()["shunt"] == "connected"


def test_when_modbus_reads_out_of_range_then_counted_and_not_data(
    sim: GxSimulator, running: tuple[Grid, MqttSource, ModbusSource]
) -> None:
    _grid, _mqtt, modbus_source = running
    sim.faults.modbus_out_of_range(True)
    wait_until(lambda: modbus_source.counters().get("garbage_out_of_range", 0) > 0, timeout_s=5)
    sim.faults.modbus_out_of_range(False)


def test_when_discover_runs_against_simulator_then_cells_and_units_found(
    sim: GxSimulator, mosquitto: MosquittoServer
) -> None:
    result = discover(mosquitto.port, sim.modbus_port, wait_s=8)
    assert result.returncode == 0, result.stdout + result.stderr
    bms = next(line for line in result.stdout.splitlines() if line.split()[:2] == ["battery", "512"])
    assert bms.split()[3] == str(CELLS)
    assert f'portal_id = "{sim.portal_id}"' in result.stdout


def test_when_gx_freezes_then_both_sources_go_stale_within_ttl_and_recover(
    sim: GxSimulator, running: tuple[Grid, MqttSource, ModbusSource]
) -> None:
    grid, mqtt_source, modbus_source = running
    wait_until(lambda: modbus_source.state()["shunt"] == "connected", timeout_s=10)
    sim.faults.freeze(True)  # the whole GX answers nothing: Modbus requests time out, MQTT goes silent
    frozen_at = time.monotonic()

    def voltage() -> object:
        shunt = row(grid, "battery", device="shunt")
        return None if shunt is None else shunt.fields.get("voltage_v")

    assert voltage() is not None
    wait_until(lambda: voltage() is None, timeout_s=TTL["shunt"] + 5)
    assert time.monotonic() - frozen_at <= TTL["shunt"] + 2.0
    assert modbus_source.state()["shunt"] == "disconnected"  # its requests time out, it reconnects
    assert mqtt_source.state()["shunt"] == "stalled"  # no heartbeat for stall_timeout_s
    sim.faults.freeze(False)
    wait_until(lambda: voltage() is not None, timeout_s=15)
    wait_until(lambda: modbus_source.state()["shunt"] == "connected", timeout_s=5)
