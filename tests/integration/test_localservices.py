"""The throwaway servers of the tests, demo and benchmarks prove that it is their own process listening:
a port taken between choosing it and binding it makes the server start again on fresh ports, never
a test talking to somebody else's socket."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import urllib3
from paho.mqtt.enums import CallbackAPIVersion

from deploy import localservices
from deploy.localservices import InfluxServer, MosquittoServer

pytestmark = pytest.mark.integration


@pytest.fixture
def squatter() -> Iterator[socket.socket]:
    """Another process's listener on a loopback port (it accepts connections and never answers)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


def _ports_first(monkeypatch: pytest.MonkeyPatch, taken: int) -> None:
    """free_port() hands out `taken` first (as if it was free a moment ago), then really free ports."""
    real = localservices.free_port
    handed = iter([taken])
    monkeypatch.setattr(localservices, "free_port", lambda: next(handed, None) or real())


def test_when_influx_port_is_taken_before_the_bind_then_it_starts_on_a_fresh_port(
    tmp_path: Path, squatter: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = squatter.getsockname()[1]
    _ports_first(monkeypatch, taken)
    with InfluxServer(tmp_path / "influxd") as server:
        assert server.port != taken
        assert "address already in use" not in server.own_log()
        reply = urllib3.PoolManager().request("GET", f"{server.url}/ping")
        assert reply.status == 204 and reply.headers["X-Influxdb-Version"].startswith("1.")
    assert "address already in use" in server.log_path.read_text()  # the first try really collided


def test_when_mosquitto_port_is_taken_before_the_bind_then_it_starts_on_a_fresh_port(
    tmp_path: Path, squatter: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = squatter.getsockname()[1]
    _ports_first(monkeypatch, taken)
    with MosquittoServer(tmp_path / "mosquitto") as server:
        assert server.port != taken
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        assert client.connect("127.0.0.1", server.port, keepalive=5) == mqtt.MQTT_ERR_SUCCESS
        client.disconnect()
        assert server.running


def test_when_a_port_the_caller_chose_is_taken_then_start_fails_clearly(
    tmp_path: Path, squatter: socket.socket
) -> None:
    taken = squatter.getsockname()[1]
    server = MosquittoServer(tmp_path / "mosquitto", port=taken)
    with pytest.raises(RuntimeError, match=rf"mosquitto did not start on port {taken} \(bind failed\)"):
        server.start(timeout_s=10)
    assert not server.running


def test_a_restart_keeps_its_port_and_reads_only_its_own_log(tmp_path: Path) -> None:
    server = InfluxServer(tmp_path / "influxd")
    server.start()
    port = server.port
    server.stop()
    server.start()
    try:
        assert server.port == port
        assert server.own_log().count("InfluxDB starting") == 1
        assert server.log_path.read_text().count("InfluxDB starting") == 2
    finally:
        server.stop()
