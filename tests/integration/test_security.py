"""Security, proved against the simulated GX and real services.

- The GX is never written to: after a real collector run the simulator received only Modbus FC3/FC4 and
  only `R/<portal>/keepalive` and empty read requests over MQTT; and the collector's own clients refuse a
  write by any route, so the simulator receives nothing from them.
- MQTT over TLS with a self-signed certificate made in the test: the collector (a subprocess) collects
  through it with the CA or a pinned fingerprint, and refuses an untrusted certificate.
- Secrets (InfluxDB token/password, MQTT password) from the environment and systemd credentials never show
  up in the collector's output, even at debug level, nor in its refusal of wrong credentials.
(InfluxDB over https: test_influx_https.py. Secrets in the config loader: tests/unit/test_secrets.py.)
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymodbus.pdu.register_message import WriteSingleRegisterRequest

from bess_common.influx import InfluxClient
from collector.config import GxSettings
from collector.simulator.gx import GxSimulator
from collector.simulator.recording import ModbusRequest, MqttMessage
from collector.sources.modbus_client import READ_FUNCTION_CODES, ReadOnlyTcpClient, WriteRefused
from collector.sources.mqtt_client import GuardedMqttClient, default_client_factory
from collector.sources.mqtt_protocol import PublishRefused
from deploy.localservices import InfluxServer, MosquittoServer, free_port
from tests.conftest import REPO_ROOT, python_env, run_cli
from tests.integration.pipeline import CollectorProcess, log_events, write_config
from tests.integration.tlscerts import tls_mosquitto
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
CELLS = 4


@pytest.fixture
def sim(mosquitto: MosquittoServer) -> Iterator[GxSimulator]:
    gx = GxSimulator(seed=21, modbus_port=0, mqtt_port=mosquitto.port, cells=CELLS).start()
    yield gx
    gx.stop()


def _prefix(topic: str) -> str:
    return "/".join(topic.split("/")[:3])


def _allowed_mqtt(portal: str, message: MqttMessage) -> bool:
    """R/<portal>/keepalive with keepalive options (or empty), or an empty read request R/<portal>/<svc>/<n>/..."""
    parts = message.topic.split("/")
    if parts[:2] != ["R", portal]:
        return False
    if parts[2:] == ["keepalive"]:
        if not message.payload:
            return True
        body = json.loads(message.payload)
        return isinstance(body, dict) and set(body) == {"keepalive-options"}
    return len(parts) >= 5 and parts[3].isdigit() and not message.payload and "+" not in parts and "#" not in parts


def _cell_count(influx: InfluxClient, since_ns: int, site: str = "t") -> int:
    query = f"SELECT count(voltage_v) FROM cell WHERE site = '{site}' AND time >= {since_ns} GROUP BY cell"
    return len(influx.query(query))


def _keepalives_after(sim: GxSimulator, since_mono: float) -> int:
    keepalive = f"R/{sim.portal_id}/keepalive"
    return sum(
        1 for r in sim.received if isinstance(r, MqttMessage) and r.topic == keepalive and r.mono_s >= since_mono
    )


def test_when_collector_runs_then_the_gx_receives_only_reads_and_keepalives(
    influx_server: InfluxServer, influx: InfluxClient, mosquitto: MosquittoServer, sim: GxSimulator, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "c.toml", influx_server.url, modbus_port=sim.modbus_port, mqtt_port=mosquitto.port,
        buffer_dir=tmp_path / "buffer", keepalive_interval_s=2.0,
    )  # fmt: skip
    collector = CollectorProcess(config, tmp_path / "collector.log").start()
    try:
        since = time.time_ns()
        wait_until(lambda: _cell_count(influx, since) == CELLS, 40, "cell rows")
        sim.faults.drop_device("bms")  # a device leaving and coming back makes the client ask for more
        wait_until(lambda: "mqtt_device_gone" in log_events(collector.log()), 20, "the collector to see the BMS go")
        restored_mono = time.monotonic()
        sim.faults.restore_device("bms")
        wait_until(lambda: "mqtt_device_back" in log_events(collector.log()), 20, "the collector to see it back")
        # what the assertions below read: several keepalives (full publish and suppress) after the return
        wait_until(
            lambda: (
                _keepalives_after(sim, restored_mono) >= 3
                and sum(isinstance(r, ModbusRequest) for r in sim.received) >= 30
            ),
            30,
            "keepalives after the BMS came back, and 30 Modbus requests in all",
        )
    finally:
        code = collector.stop()
    assert code == 0, collector.log()[-3000:]
    received = sim.received
    modbus = [r for r in received if isinstance(r, ModbusRequest)]
    mqtt = [r for r in received if isinstance(r, MqttMessage)]
    assert len(modbus) >= 30 and len(mqtt) >= 3, (len(modbus), len(mqtt))
    codes = Counter(r.function_code for r in modbus)
    assert set(codes) <= READ_FUNCTION_CODES, f"Modbus function codes received: {dict(codes)}"
    outside = [m for m in mqtt if not _allowed_mqtt(sim.portal_id, m)]
    by_prefix = Counter(_prefix(m.topic) for m in mqtt)
    assert outside == [], f"MQTT outside keepalive/read requests: {outside[:5]}; all by prefix: {dict(by_prefix)}"
    payloads = [m.payload for m in mqtt if m.topic == f"R/{sim.portal_id}/keepalive"]
    assert any(b"full-publish-completed-echo" in p for p in payloads) and any(b"suppress" in p for p in payloads)


def test_when_a_write_is_attempted_through_the_collector_clients_then_refused_and_the_gx_receives_nothing(
    mosquitto: MosquittoServer, sim: GxSimulator
) -> None:
    assert sim.modbus_port is not None
    portal = sim.portal_id
    modbus = ReadOnlyTcpClient("127.0.0.1", port=sim.modbus_port, timeout=1.0, retries=0)
    mqtt = default_client_factory(GxSettings(host="127.0.0.1", mqtt_port=mosquitto.port), "bess-write-probe")
    assert isinstance(mqtt, GuardedMqttClient)
    mqtt.guard_portal = portal
    assert modbus.connect()
    mqtt.connect("127.0.0.1", mosquitto.port)
    mqtt.loop_start()
    try:
        for attempt in (
            lambda: modbus.write_register(2901, 100, device_id=100),
            lambda: modbus.write_registers(2901, [100], device_id=100),
            lambda: modbus.write_coil(0, True, device_id=100),
            lambda: modbus.send(struct.pack(">HHHBBHH", 1, 0, 6, 100, 6, 2901, 100)),  # a raw FC6 frame
            lambda: modbus.transaction.sync_execute(
                False, WriteSingleRegisterRequest(address=2901, registers=[100], dev_id=100)
            ),
        ):
            with pytest.raises(WriteRefused):
                attempt()
        for topic, payload in [
            (f"W/{portal}/settings/0/Settings/CGwacs/BatteryLife/MinimumSocLimit", b'{"value": 90}'),
            (f"W/{portal}/vebus/276/Mode", b'{"value": 4}'),
            (f"N/{portal}/battery/0/Soc", b'{"value": 1}'),
            (f"R/{portal}/battery/0/Soc", b'{"value": 1}'),  # a read request never carries a payload
            (f"R/{portal}/#", b""),
            ("R/000000000000/keepalive", b""),
        ]:
            with pytest.raises(PublishRefused):
                mqtt.publish(topic, payload)
        with pytest.raises(PublishRefused):
            mqtt.will_set(f"W/{portal}/vebus/276/Mode", b'{"value": 4}')
        # the same clients still read, and the GX sees those
        assert modbus.read_holding_registers(2900, count=1, device_id=100).isError() is False
        mqtt.publish(f"R/{portal}/system/0/Dc/Battery/Soc", b"")
        wait_until(lambda: any(isinstance(r, MqttMessage) for r in sim.received), 5, "the read request")
        time.sleep(0.5)
    finally:
        modbus.close()
        mqtt.loop_stop()
        mqtt.disconnect()
    received = sim.received
    assert [r.function_code for r in received if isinstance(r, ModbusRequest)] == [3]
    assert [r.topic for r in received if isinstance(r, MqttMessage)] == [f"R/{portal}/system/0/Dc/Battery/Soc"]


# --- MQTT over TLS -------------------------------------------------------------------------------------------
@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[MosquittoServer, Path, str]]:
    """mosquitto with a plain listener (the simulated GX publishes there) and a TLS one (the collector)."""
    with tls_mosquitto(tmp_path) as broker:
        yield broker


def _tls_collector(tmp_path: Path, name: str, *, influx_url: str, port: int, gx: str, site: str) -> CollectorProcess:
    config = write_config(
        tmp_path / f"{name}.toml", influx_url, modbus_port=None, mqtt_port=port,
        buffer_dir=tmp_path / f"buffer-{name}", site=site, shutdown_flush_timeout_s=2.0,
    )  # fmt: skip
    text = config.read_text().replace("[collector]\n", f"mqtt_tls = true\n{gx}[collector]\n")
    config.write_text(text)
    return CollectorProcess(config, tmp_path / f"{name}.log").start()


def test_when_mqtt_over_tls_then_collector_trusts_ca_or_pin_and_refuses_an_unknown_certificate(
    influx_server: InfluxServer,
    influx: InfluxClient,
    tls_broker: tuple[MosquittoServer, Path, str],
    tmp_path: Path,
) -> None:
    server, cert, fingerprint = tls_broker
    assert server.tls_port is not None
    sim = GxSimulator(seed=4, modbus_port=None, mqtt_port=server.port, cells=CELLS).start()
    pin = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    url, port = influx_server.url, server.tls_port
    since = time.time_ns()
    collectors = [
        _tls_collector(tmp_path, "ca", influx_url=url, port=port, gx=f'mqtt_ca_file = "{cert}"\n', site="ca"),
        _tls_collector(tmp_path, "pin", influx_url=url, port=port, gx=f'mqtt_cert_sha256 = "{pin}"\n', site="pin"),
        _tls_collector(tmp_path, "untrusted", influx_url=url, port=port, gx="", site="untrusted"),
    ]
    try:
        for site in ("ca", "pin"):
            wait_until(lambda site=site: _cell_count(influx, since, site) == CELLS, 40, f"cell rows via TLS ({site})")  # type: ignore[misc]
        time.sleep(2.0)
        untrusted = collectors[2]
        assert untrusted.proc is not None and untrusted.proc.poll() is None, "a bad certificate must not crash it"
    finally:
        codes = [c.stop() for c in collectors]
        sim.stop()
    assert codes == [0, 0, 0], [c.log()[-1500:] for c in collectors]
    assert _cell_count(influx, since, "untrusted") == 0
    assert influx.query(f"SELECT * FROM battery WHERE site = 'untrusted' AND voltage_v > 0 AND time >= {since}") == []
    log = collectors[2].log()
    assert "certificate verify failed" in log, log[-2000:]
    assert "mqtt_connected" not in log_events(log)
    for trusted in collectors[:2]:
        assert "mqtt_connected" in log_events(trusted.log())


def _start_with_env(config: Path, log_path: Path, env: dict[str, str]) -> CollectorProcess:
    """CollectorProcess.start with an environment of our own (secrets in env and $CREDENTIALS_DIRECTORY)."""
    collector = CollectorProcess(config, log_path)
    with log_path.open("ab") as log:
        collector.proc = subprocess.Popen(
            [sys.executable, "-m", "collector", "run", "--config", str(config)],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return collector


# --- secrets in a real run ----------------------------------------------------------------------------------
SECRETS = {
    "influx_token": "tok-9d41-LEAKCHECK",
    "influx_password": "pw-77ab-LEAKCHECK",
    "mqtt_password": "mq-3c5e-LEAKCHECK",
}


def test_when_collector_runs_at_debug_with_secrets_then_none_appears_in_its_output(
    influx_server: InfluxServer, influx: InfluxClient, mosquitto: MosquittoServer, sim: GxSimulator, tmp_path: Path
) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "mqtt_password").write_text(SECRETS["mqtt_password"])
    (creds / "influx_password").write_text(SECRETS["influx_password"])
    config = write_config(
        tmp_path / "c.toml", influx_server.url, modbus_port=sim.modbus_port, mqtt_port=mosquitto.port,
        buffer_dir=tmp_path / "buffer",
    )  # fmt: skip
    config.write_text(config.read_text().replace('level = "info"', 'level = "debug"'))
    env = {**python_env(), "CREDENTIALS_DIRECTORY": str(creds), "BESS_INFLUX__TOKEN": SECRETS["influx_token"]}
    collector = _start_with_env(config, tmp_path / "collector.log", env)
    try:
        since = time.time_ns()
        wait_until(lambda: _cell_count(influx, since) == CELLS, 40, "cell rows (the secrets were in use)")
        time.sleep(2.0)
    finally:
        code = collector.stop()
    assert code == 0, collector.log()[-3000:]
    output = collector.log()
    assert "collector_started" in log_events(output) and "mqtt_snapshot_complete" in log_events(output)
    for name, value in SECRETS.items():
        assert value not in output, f"{name} leaked into the collector's output"


def test_when_influx_refuses_the_credentials_then_exit_2_without_echoing_them(
    tmp_path: Path,
) -> None:
    server = InfluxServer(tmp_path / "influxd-auth", auth=True)
    server.start()
    try:
        config = write_config(
            tmp_path / "c.toml", server.url, modbus_port=None, mqtt_port=free_port(), buffer_dir=tmp_path / "b"
        )
        config.write_text(config.read_text().replace('database = "bess"\n', 'database = "bess"\nusername = "bess"\n'))
        env = {**python_env(), "BESS_INFLUX__PASSWORD": SECRETS["influx_password"]}
        refused = run_cli("collector", "run", "--config", str(config), env=env, timeout_s=60)
        env = {**python_env(), "BESS_INFLUX__TOKEN": SECRETS["influx_token"]}
        refused_token = run_cli("collector", "run", "--config", str(config), env=env, timeout_s=60)
    finally:
        server.stop()
    for result in (refused, refused_token):
        assert result.returncode == 2, result.stdout[-1000:] + result.stderr[-1000:]
        assert "influx" in result.stderr and ("401" in result.stderr or "403" in result.stderr), result.stderr
        for value in SECRETS.values():
            assert value not in result.stdout + result.stderr
