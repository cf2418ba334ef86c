"""The long tail end to end: real mosquitto, real influxd, the collector as a subprocess, the simulated GX.

Every topic the tables do not map lands in `gx_topic` (numbers, text, null) with service, instance and path as
tags; the deny list holds; a flooding device is capped and counted in /metrics while the 1 Hz rows go on
landing every second.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import urllib3
from paho.mqtt.enums import CallbackAPIVersion

from bess_common.influx import InfluxClient
from collector.simulator.gx import GxSimulator
from deploy.localservices import InfluxServer, MosquittoServer, free_port
from tests.integration.pipeline import SECOND_NS, CollectorProcess, shunt_seconds, whole_seconds, write_config
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

DEVICE_RATE_PER_S = 10.0
DEVICE_BURST = 30
FLOOD_PER_S = 400
FLOOD_S = 6


@pytest.fixture
def sim(mosquitto: MosquittoServer) -> Iterator[GxSimulator]:
    gx = GxSimulator(seed=5, modbus_port=None, mqtt_port=mosquitto.port, cells=4).start()
    yield gx
    gx.stop()


def _metrics(port: int) -> dict[str, float]:
    text = urllib3.PoolManager().request("GET", f"http://127.0.0.1:{port}/metrics").data.decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _start(
    tmp_path: Path, influx_server: InfluxServer, sim: GxSimulator, mqtt_port: int, metrics_port: int
) -> CollectorProcess:
    config = write_config(
        tmp_path / "c.toml", influx_server.url, modbus_port=None, mqtt_port=mqtt_port,
        buffer_dir=tmp_path / "buffer", portal_id=sim.portal_id,
    )  # fmt: skip
    text = config.read_text().replace("metrics_port = 0\n", f"metrics_port = {metrics_port}\n")
    text += (
        f"[collector.long_tail]\ndevice_rate_per_s = {DEVICE_RATE_PER_S}\ndevice_burst = {DEVICE_BURST}\n"
        'deny = ["*/Mgmt/*"]\n'
    )
    config.write_text(text)
    return CollectorProcess(config, tmp_path / "collector.log").start()


class GxPublisher:
    """Publishes on the broker as the GX would, for devices the simulator does not have."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tail-gx")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, value: object) -> None:
        self.client.publish(topic, json.dumps({"value": value}).encode(), qos=0)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _tail(influx: InfluxClient, where: str) -> list[dict[str, object]]:
    return [row for s in influx.query(f"SELECT * FROM gx_topic WHERE {where}") for row in s.rows()]


def test_when_gx_publishes_unmapped_topics_then_they_land_on_change_and_a_flood_is_capped(
    influx_server: InfluxServer, influx: InfluxClient, mosquitto: MosquittoServer, sim: GxSimulator, tmp_path: Path
) -> None:
    metrics_port = free_port()
    collector = _start(tmp_path, influx_server, sim, mosquitto.port, metrics_port)
    portal = sim.portal_id
    gx = GxPublisher(mosquitto.port)
    try:
        wait_until(lambda: shunt_seconds(influx, time.time_ns() - 5 * SECOND_NS, time.time_ns()), 40, "shunt rows")
        # a device no table maps: a number, a text, a null; and one denied path
        gx.send(f"N/{portal}/tank/21/Level", 42.5)
        gx.send(f"N/{portal}/tank/21/CustomName", "Fresh water")
        gx.send(f"N/{portal}/tank/21/Remaining", None)
        gx.send(f"N/{portal}/tank/21/Mgmt/ProcessName", "dbus-tank")
        # the flood: a device changing one value FLOOD_PER_S times a second for FLOOD_S seconds
        flood_start_ns = time.time_ns()
        sent = 0
        for _second in range(FLOOD_S):
            began = time.monotonic()
            for _burst in range(10):
                for _ in range(FLOOD_PER_S // 10):
                    sent += 1
                    gx.send(f"N/{portal}/tank/20/Level", sent)
                time.sleep(max(0.0, began + (_burst + 1) * 0.1 - time.monotonic()))
        flood_end_ns = time.time_ns()
        wait_until(lambda: _tail(influx, "service = 'tank' AND instance = '21'"), 15, "the tank/21 points")
        time.sleep(3.0)  # the writer flushes the last seconds
        metrics = _metrics(metrics_port)
    finally:
        gx.close()
        code = collector.stop()
    assert code == 0, collector.log()[-3000:]

    # the one-off device landed: number, text and null, with its tags; the denied path did not
    tank21 = {str(r["path"]): r for r in _tail(influx, "service = 'tank' AND instance = '21'")}
    assert set(tank21) == {"/Level", "/CustomName", "/Remaining"}, tank21
    assert tank21["/Level"]["value"] == 42.5
    assert tank21["/CustomName"]["text"] == "Fresh water"
    assert tank21["/Remaining"]["invalid"] is True
    # what the simulated GX publishes beyond the tables lands too (its serial: the portal id, as text)
    serial = _tail(influx, "service = 'system' AND path = '/Serial'")
    assert serial and serial[0]["text"] == portal, serial

    # the flood is capped: at most the burst plus the sustained rate over its duration (and a little slack)
    stored = _tail(influx, "service = 'tank' AND instance = '20'")
    flood_s = (flood_end_ns - flood_start_ns) / 1e9
    assert sent == FLOOD_PER_S * FLOOD_S
    assert DEVICE_BURST <= len(stored) <= DEVICE_BURST + DEVICE_RATE_PER_S * (flood_s + 2), (len(stored), flood_s)
    # ... and counted: every value not stored is in /metrics under that device
    capped = metrics['bess_collector_long_tail_capped_total{device="tank/20"}']
    assert capped == sent - len(stored), (capped, sent, len(stored))
    assert metrics['bess_collector_long_tail_values_total{outcome="denied"}'] >= 1
    # ... and the 1 Hz data went on landing every second through it
    seconds = set(shunt_seconds(influx, flood_start_ns, flood_end_ns))
    missing = [t for t in whole_seconds(flood_start_ns, flood_end_ns - SECOND_NS) if t not in seconds]
    assert missing == [], f"shunt seconds missing during the flood: {missing}"
