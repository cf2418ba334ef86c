"""Sources feeding the 1 Hz grid: change-only MQTT values land every second while the GX is alive,
go stale within their TTL when it freezes, come back when it recovers; Modbus fills in without MQTT."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bess_common.sample import Sample
from collector.config import CollectorSettings, GxSettings
from collector.grid import Grid
from collector.sources.modbus import ModbusSource
from collector.sources.mqtt import MqttSource
from deploy.localservices import MosquittoServer
from tests.integration.test_sources_modbus import GxModbusServer, gx_units
from tests.integration.test_sources_mqtt import PORTAL, FakeGx
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

TTL = {"shunt": 1.5, "cell": 1.5, "system": 1.5}


def shunt(grid: Grid) -> Sample:
    rows = [s for s in grid.snapshot(time.time_ns(), time.monotonic()) if s.tags.get("device") == "shunt"]
    assert len(rows) == 1
    return rows[0]


def has_shunt_voltage(grid: Grid) -> bool:
    rows = [s for s in grid.snapshot(time.time_ns(), time.monotonic()) if s.tags.get("device") == "shunt"]
    return bool(rows) and "voltage_v" in rows[0].fields


@pytest.fixture
def fake_gx(mosquitto: MosquittoServer) -> Iterator[FakeGx]:
    with FakeGx(mosquitto.port) as gx:
        yield gx


def test_when_value_published_once_then_it_lands_every_second_until_the_gx_freezes(
    mosquitto: MosquittoServer, fake_gx: FakeGx
) -> None:
    grid = Grid("shop", TTL)
    gx = GxSettings(host="127.0.0.1", mqtt_port=mosquitto.port, portal_id=PORTAL, modbus_enabled=False)
    source = MqttSource(gx, CollectorSettings(stall_timeout_s=1.5, keepalive_interval_s=1.0))
    source.start(grid.apply)
    try:
        wait_until(lambda: has_shunt_voltage(grid))
        rows = []
        for _ in range(4):  # 4 s with no new shunt message: the heartbeat confirms the held value
            time.sleep(1.0)
            rows.append(shunt(grid))
        assert [r.fields.get("voltage_v") for r in rows] == [53.27] * 4
        assert all(float(r.fields["age_s"]) < 1.0 for r in rows)
        assert all(r.fields["stale_fields"] == 0 for r in rows)
        fake_gx.frozen.set()
        frozen = time.monotonic()
        wait_until(lambda: "voltage_v" not in shunt(grid).fields, timeout_s=5)
        assert time.monotonic() - frozen <= TTL["shunt"] + 0.6  # stale within its TTL (+ one heartbeat)
        assert int(shunt(grid).fields["stale_fields"]) >= 3
        fake_gx.frozen.clear()
        wait_until(lambda: shunt(grid).fields.get("voltage_v") == 53.27, timeout_s=10)
    finally:
        source.stop()


def test_when_only_modbus_runs_then_the_grid_still_has_every_second_from_it() -> None:
    server = GxModbusServer(gx_units())
    server.start()
    grid = Grid("shop", TTL)
    gx = GxSettings(host="127.0.0.1", modbus_port=server.port, mqtt_enabled=False)
    source = ModbusSource(gx, CollectorSettings(interval_s=1.0))
    source.start(grid.apply)
    try:
        wait_until(lambda: has_shunt_voltage(grid), timeout_s=5)
        for _ in range(3):
            time.sleep(1.0)
            row = shunt(grid)
            assert row.fields["voltage_v"] == pytest.approx(53.27)
            assert float(row.fields["age_s"]) <= 1.2
        system = next(s for s in grid.snapshot(0, time.monotonic()) if s.measurement == "system")
        assert "battery_soc_pct" not in system.fields  # saturated register: never data
        assert system.fields["battery_power_w"] == -650.0
    finally:
        source.stop()
        server.stop()
