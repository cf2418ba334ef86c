"""`bess-collector discover` end to end: a real mosquitto with a Venus-like publisher and a Modbus server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from deploy.localservices import MosquittoServer, free_port
from tests.conftest import python_env, run_cli
from tests.integration.test_sources_modbus import GxModbusServer, gx_units
from tests.integration.test_sources_mqtt import PORTAL, FakeGx

pytestmark = pytest.mark.integration


def discover(
    mqtt_port: int, modbus_port: int | None = None, wait_s: int | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`bess-collector discover --host 127.0.0.1` on these ports (--timeout-s wait_s when given)."""
    args = ["--host", "127.0.0.1", "--mqtt-port", str(mqtt_port)]
    if modbus_port is not None:
        args += ["--modbus-port", str(modbus_port)]
    if wait_s is not None:
        args += ["--timeout-s", str(wait_s)]
    return run_cli("collector", "discover", *args, timeout_s=60, env=env)


@pytest.fixture
def gx(mosquitto: MosquittoServer) -> Iterator[tuple[FakeGx, GxModbusServer]]:
    modbus = GxModbusServer(gx_units())
    modbus.absent.add(223)
    with FakeGx(mosquitto.port) as fake, modbus:
        yield fake, modbus


def test_when_gx_reachable_then_portal_services_units_cells_printed(
    mosquitto: MosquittoServer, gx: tuple[FakeGx, GxModbusServer]
) -> None:
    _fake, modbus = gx
    result = discover(mosquitto.port, modbus.port, wait_s=5)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert f"portal id {PORTAL}" in out
    lines = out.splitlines()
    bms = next(line for line in lines if line.split()[:2] == ["battery", "512"])
    assert bms.split()[2:4] == ["225", "2"]  # unit 225, 2 cells
    shunt = next(line for line in lines if line.split()[:2] == ["battery", "0"])
    assert "Lynx Shunt" in shunt
    probes = {
        int(line.split()[0]): line
        for line in lines
        if (line.strip()[:3].isdigit() and "ok" in line) or "absent" in line
    }
    assert "ok: system 53.2 V" in probes[100]
    assert "ok: battery 53.27 V" in probes[225]
    assert "absent (0x0a)" in probes[223]
    assert f'portal_id = "{PORTAL}"' in out
    assert "bms_instance = 512" in out and "bms_unit_id = 225" in out
    assert "shunt_instance = 0" in out and "shunt_unit_id = 100" in out
    assert {frame[7] for frame in modbus.received} == {3}
    assert len(modbus.received) == 8  # one read per unit id: 100, 225, then the usual six


def test_when_gx_unreachable_then_exit_1_with_a_clear_line() -> None:
    port = free_port()
    result = discover(port, port)
    assert result.returncode == 1
    assert "error: cannot reach the GX over MQTT" in result.stdout
    assert "error: cannot reach the GX over Modbus-TCP at 127.0.0.1" in result.stdout


def test_when_broker_answers_but_no_gx_publishes_then_exit_1_with_a_hint(mosquitto: MosquittoServer) -> None:
    result = discover(mosquitto.port, wait_s=1, env={**python_env(), "BESS_GX__MODBUS_ENABLED": "false"})
    assert result.returncode == 1
    assert "no GX published N/<portal>/system/0/Serial within 1 s" in result.stdout
    assert "Modbus-TCP" not in result.stdout  # disabled in [gx]: not probed
