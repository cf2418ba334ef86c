"""The MQTT source against a real mosquitto and a minimal Venus-like publisher ("fake GX").

FakeGx behaves like dbus-flashmq where it matters: a retained N/<id>/system/0/Serial, values only on
change or on a full keepalive, `full_publish_completed` with the echo token, a heartbeat (faster than
the real 3 s so the tests stay short), and it can freeze (no heartbeat, no answers).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import structlog
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import CollectorSettings, GxSettings
from collector.health import HealthSnapshot, metric_families
from collector.observation import MULTI_ROLES, Confirm, DeviceGone, Event, Invalid, Observation
from collector.plan import PlanTracker
from collector.sources.mqtt import MqttSource
from collector.sources.mqtt_client import GuardedMqttClient, default_client_factory
from collector.sources.mqtt_protocol import PublishRefused
from deploy.localservices import MosquittoServer
from tests.integration.sourcewait import Collected, StartStop, confirmed, started
from tests.integration.tlscerts import tls_mosquitto
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

PORTAL = "c0619ab1f2e3"
VALUES = {
    "battery/0/Dc/0/Voltage": 53.27,
    "battery/0/Dc/0/Current": -12.34,
    "battery/0/Soc": 80.5,
    "battery/0/ProductName": "Lynx Shunt",
    "battery/512/Voltages/Cell1": 3.301,
    "battery/512/Voltages/Cell2": 3.305,
    "battery/512/System/NrOfCellsPerBattery": 2,
    "system/0/Dc/Battery/Power": -650,
    "system/0/Serial": PORTAL,
    "settings/0/Settings/CGwacs/BatteryLife/State": 10,
}


class FakeGx(StartStop):
    """A Venus-like publisher on the broker; with listen_delay_s it subscribes to R/ and W/ (and announces
    itself) that long after publishing the retained Serial, as a plugin still starting up would."""

    def __init__(self, port: int, heartbeat_s: float = 0.3, listen_delay_s: float = 0.0) -> None:
        self.port = port
        self.heartbeat_s = heartbeat_s
        self.listen_delay_s = listen_delay_s
        self.values = dict(VALUES)
        self.requests: list[tuple[str, bytes]] = []
        self.frozen = threading.Event()
        self._stop = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fake-gx")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]  # paho takes float seconds; hinted int
        self.ready = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)

    def start(self) -> None:
        self._client.connect("127.0.0.1", self.port, keepalive=5)
        self._client.loop_start()
        assert self.ready.wait(5), "fake GX did not subscribe"
        self._beat.start()

    def stop(self) -> None:
        self._stop.set()
        self._client.loop_stop()
        self._client.disconnect()

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.publish(f"N/{PORTAL}/system/0/Serial", json.dumps({"value": PORTAL}), retain=True)
        if self.listen_delay_s:
            listen = threading.Timer(self.listen_delay_s, client.subscribe, [[("R/#", 0), ("W/#", 0)]])
            listen.daemon = True
            listen.start()
        else:
            client.subscribe([("R/#", 0), ("W/#", 0)])

    def _on_subscribe(self, client: mqtt.Client, *_: object) -> None:
        client.publish(f"N/{PORTAL}/keepalive", b"1")  # the plugin announces each start, as on a GX
        self.ready.set()

    def _on_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.requests.append((msg.topic, bytes(msg.payload)))
        if self.frozen.is_set() or msg.topic != f"R/{PORTAL}/keepalive":
            return
        options = json.loads(msg.payload or b"{}").get("keepalive-options", [])
        if "suppress-republish" in options:
            return
        for path, value in self.values.items():
            self.publish(path, {"value": value})
        echo = next((o["full-publish-completed-echo"] for o in options if isinstance(o, dict)), None)
        client.publish(
            f"N/{PORTAL}/full_publish_completed",
            json.dumps({"full-publish-completed-echo": echo, "value": int(time.time())}),
        )

    def publish(self, path: str, payload: object) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self._client.publish(f"N/{PORTAL}/{path}", data)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            if not self.frozen.is_set():
                self._client.publish(f"N/{PORTAL}/heartbeat", json.dumps({"value": int(time.time())}))

    def keepalives(self) -> list[bytes]:
        return [p for t, p in self.requests if t == f"R/{PORTAL}/keepalive"]


def observed(events: list[Event], role: str, path: str) -> list[object]:
    return [e.value for e in events if isinstance(e, Observation) and e.role == role and e.path == path]


def has_voltage(events: list[Event]) -> bool:
    """True once the shunt voltage has arrived."""
    return bool(observed(events, "shunt", "/Dc/0/Voltage"))


@pytest.fixture
def fake_gx(mosquitto: MosquittoServer) -> Iterator[FakeGx]:
    with FakeGx(mosquitto.port) as gx:
        yield gx


def make_source(port: int, portal_id: str = "", **gx_kw: object) -> MqttSource:
    gx = GxSettings(host="127.0.0.1", mqtt_port=port, portal_id=portal_id, **gx_kw)
    collector = CollectorSettings(keepalive_interval_s=1.0, full_refresh_interval_s=300.0, stall_timeout_s=1.5)
    return MqttSource(gx, collector)


def test_when_started_then_portal_discovered_full_publish_echoed_values_and_confirms_arrive(
    mosquitto: MosquittoServer, fake_gx: FakeGx
) -> None:
    source = make_source(mosquitto.port)
    with started(source, until=confirmed) as (sink, _):
        wait_until(lambda: any(b"suppress-republish" in p for p in fake_gx.keepalives()))
        events = sink.snapshot()
    assert source.portal == PORTAL
    assert observed(events, "shunt", "/Dc/0/Voltage") == [53.27]
    assert observed(events, "bms", "/Voltages/Cell2") == [3.305]
    assert observed(events, "system", "/Dc/Battery/Power") == [-650]
    assert observed(events, "settings", "/Settings/CGwacs/BatteryLife/State") == [10]
    assert observed(events, "shunt", "/ProductName") == []  # not stored: never an Observation
    first = json.loads(fake_gx.keepalives()[0])
    token = first["keepalive-options"][0]["full-publish-completed-echo"]
    assert token.startswith("bess-edge-")
    confirms = [e for e in events if isinstance(e, Confirm)]
    assert confirms[0].roles == ("system", "settings", "shunt", "bms", *MULTI_ROLES)
    assert all(t.startswith(f"R/{PORTAL}/") for t, _ in fake_gx.requests)
    assert source.state()["shunt"] == "connected"


def test_when_values_change_or_go_invalid_or_device_leaves_then_events_follow(
    mosquitto: MosquittoServer, fake_gx: FakeGx
) -> None:
    source = make_source(mosquitto.port, portal_id=PORTAL)
    with started(source, until=confirmed) as (sink, _):
        fake_gx.publish("battery/0/Dc/0/Voltage", {"value": 53.31})
        fake_gx.publish("battery/0/Soc", {"value": None})
        for path in ("Dc/0/Voltage", "Soc", "ProductName"):
            fake_gx.publish(f"battery/512/{path}", b"")
        events = sink.wait_for(
            lambda ev: any(isinstance(e, DeviceGone) for e in ev) and 53.31 in observed(ev, "shunt", "/Dc/0/Voltage")
        )
        time.sleep(0.3)
        events = sink.snapshot()
        assert Invalid.NULL in observed(events, "shunt", "/Soc")
        gone = [e for e in events if isinstance(e, DeviceGone)]
        assert [(g.role, g.source) for g in gone] == [("bms", "mqtt")]  # once, not once per topic
        assert source.state()["bms"] == "absent"
        before = len(fake_gx.keepalives())
        fake_gx.publish("battery/512/Voltages/Cell1", {"value": 3.31})
        wait_until(lambda: source.state()["bms"] != "absent")
        wait_until(lambda: len(fake_gx.keepalives()) > before)  # a device back asks for everything


GARBAGE: list[tuple[str, bytes, str]] = [
    ("battery/0/Dc/0/Voltage", b"not json", "non_json"),
    ("battery/0/Dc/0/Current", b'{"value": NaN}', "nan"),
    ("battery/0/Dc/0/Power", b'{"value": Infinity}', "nan"),
    ("battery/0/Soc", b'{"value": "80"}', "wrong_type"),
    ("battery/0/Dc/0/Temperature", b'{"value": [1, 2]}', "wrong_type"),
    ("settings/0/Settings/System/TimeZone", b'{"value": 3600}', "wrong_type"),  # a number for plan.csv's text
    ("battery/0/TimeToGo", b'{"v": 1}', "no_value"),
    ("battery/0/ConsumedAmphours", b'{"value": 1, "pad": "' + b"x" * 70_000 + b'"}', "oversized"),
    ("battery/0", b'{"value": 1}', "unknown_topic"),
]


def test_when_gx_sends_garbage_then_each_kind_counted_and_never_an_observation(
    mosquitto: MosquittoServer, fake_gx: FakeGx
) -> None:
    source = make_source(mosquitto.port, portal_id=PORTAL)
    with started(source, until=confirmed) as (sink, _):
        start = len(sink.snapshot())
        for path, payload, _kind in GARBAGE:
            fake_gx.publish(path, payload)
        fake_gx.publish("battery/0/Dc/0/Voltage", {"value": 54.0})  # a good one after the garbage
        sink.wait_for(lambda ev: 54.0 in observed(ev, "shunt", "/Dc/0/Voltage"))
        new = [e for e in sink.snapshot()[start:] if isinstance(e, Observation)]
        counters = source.counters()
    assert [(e.path, e.value) for e in new] == [("/Dc/0/Voltage", 54.0)]
    for kind in {k for _, _, k in GARBAGE}:
        assert counters.get(f"garbage_{kind}", 0) >= 1, kind
    assert source.state()["shunt"] in ("connected", "disconnected")  # alive, not crashed


def test_when_a_plan_value_has_the_wrong_type_then_one_log_line_shows_it_and_metrics_count_every_one(
    mosquitto: MosquittoServer, fake_gx: FakeGx
) -> None:
    zone, soc = "/Settings/System/TimeZone", "/Settings/DynamicEss/Schedule/0/Soc"
    wrong = [(zone, b'{"value": 3600}'), (zone, b'{"value": 3600}'), (soc, b'{"value": "full"}')]
    source = make_source(mosquitto.port, portal_id=PORTAL)
    with started(source, until=confirmed) as (sink, _), structlog.testing.capture_logs() as logs:
        for path, payload in wrong:
            fake_gx.publish(f"settings/0{path}", payload)
        fake_gx.publish(f"settings/0{zone}", {"value": "Europe/Amsterdam"})  # a good one after them
        events = sink.wait_for(lambda ev: "Europe/Amsterdam" in observed(ev, "settings", zone))
        counters = source.counters()
    garbage = [(e["kind"], e["path"], e["payload"]) for e in logs if e["event"] == "mqtt_garbage"]
    assert garbage == [("wrong_type", zone, '{"value": 3600}')]  # the first; the others are counted only
    families = metric_families(HealthSnapshot(source_counters={"mqtt": counters}))  # what /metrics serves
    errors = next(f for f in families if f.name == "bess_collector_source_errors")
    by_kind = {s.labels["kind"]: s.value for s in errors.samples if s.name.endswith("_total")}
    assert by_kind == {"garbage_wrong_type": len(wrong)}
    tracker = PlanTracker("shop", settle_s=0.0)
    tracker.observe(events)
    plan = tracker.drain(1, mono_s=float("inf"))
    assert [(p.tags["slot"], p.fields) for p in plan] == [("all", {"time_zone": "Europe/Amsterdam"})]


def test_when_gx_freezes_then_reconnect_and_recover_when_it_answers_again(
    mosquitto: MosquittoServer, fake_gx: FakeGx
) -> None:
    source = make_source(mosquitto.port, portal_id=PORTAL)
    with started(source, until=confirmed) as (sink, _):
        with structlog.testing.capture_logs() as logs:
            fake_gx.frozen.set()
            wait_until(lambda: source.counters().get("stalls", 0) >= 3, timeout_s=15)  # frozen for a while
            assert source.state()["shunt"] == "stalled"
            frozen_at = len(sink.snapshot())
            fake_gx.frozen.clear()
            wait_until(lambda: source.state()["shunt"] == "connected", timeout_s=10)
        loud = [e["event"] for e in logs if e["log_level"] in ("info", "warning", "error")]
        assert loud == ["mqtt_stalled", "mqtt_recovered"]  # state changes only, however many reconnects
        events = sink.wait_for(lambda ev: confirmed(ev[frozen_at:]))[frozen_at:]
        assert observed(events, "shunt", "/Dc/0/Voltage") == [53.27]  # the full publish after reconnect
        assert source.counters()["connections"] >= 2
        tokens = {
            json.loads(p)["keepalive-options"][0]["full-publish-completed-echo"]
            for p in fake_gx.keepalives()
            if b"echo" in p
        }
        assert len(tokens) >= 2  # a fresh token on the reconnect


def test_when_broker_restarts_then_data_resumes_within_10_s(mosquitto: MosquittoServer, fake_gx: FakeGx) -> None:
    source = make_source(mosquitto.port)
    with started(source, until=confirmed) as (sink, _):
        mosquitto.stop()
        time.sleep(2.0)
        mosquitto.start()
        restarted = time.monotonic()
        start = len(sink.snapshot())
        sink.wait_for(
            lambda ev: confirmed(ev[start:]) and has_voltage(ev[start:]),
            timeout_s=10,
        )
        assert time.monotonic() - restarted < 10
        wait_until(lambda: any(b"suppress-republish" in p for p in fake_gx.keepalives()[-3:]))


def test_when_the_gx_listens_only_after_our_first_full_keepalive_then_data_arrives_within_a_few_s(
    mosquitto: MosquittoServer,
) -> None:
    source = make_source(mosquitto.port)
    with started(source) as (sink, _):
        wait_until(lambda: source.counters().get("connections", 0) >= 1)
        # the Serial reaches us at once and our full keepalive goes out; the plugin listens 0.4 s later
        with FakeGx(mosquitto.port, listen_delay_s=0.4) as gx:
            sink.wait_for(lambda ev: confirmed(ev) and has_voltage(ev), timeout_s=8)  # the re-ask: 15 s
            assert len([p for p in gx.keepalives() if b"echo" in p]) >= 1


def test_when_write_attempted_through_the_client_then_refused_and_broker_sees_nothing(
    mosquitto: MosquittoServer,
) -> None:
    seen: list[str] = []
    observer = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="observer")
    observer.on_message = lambda _c, _u, m: seen.append(m.topic)
    observer.connect("127.0.0.1", mosquitto.port)
    observer.subscribe("#")
    observer.loop_start()
    client = default_client_factory(GxSettings(host="127.0.0.1", mqtt_port=mosquitto.port), "bess-test")
    assert isinstance(client, GuardedMqttClient)
    client.guard_portal = PORTAL
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        time.sleep(0.3)
        for topic, payload in [
            (f"W/{PORTAL}/settings/0/Settings/CGwacs/BatteryLife/MinimumSocLimit", b'{"value": 90}'),
            (f"W/{PORTAL}/vebus/276/Mode", b'{"value": 4}'),
            (f"N/{PORTAL}/battery/0/Soc", b'{"value": 1}'),
            ("R/otherportal/keepalive", b""),
        ]:
            with pytest.raises(PublishRefused):
                client.publish(topic, payload)
        with pytest.raises(PublishRefused):
            client.publish(f"R/{PORTAL}/keepalive", b"", retain=True)
        with pytest.raises(PublishRefused):
            client.will_set(f"W/{PORTAL}/vebus/276/Mode", b'{"value": 4}')
        client.publish(f"R/{PORTAL}/keepalive", b'{"keepalive-options":["suppress-republish"]}')
        wait_until(lambda: f"R/{PORTAL}/keepalive" in seen, timeout_s=3)
        assert seen == [f"R/{PORTAL}/keepalive"]
    finally:
        client.loop_stop()
        client.disconnect()
        observer.loop_stop()
        observer.disconnect()


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[MosquittoServer, Path, str]]:
    with tls_mosquitto(tmp_path) as broker:
        yield broker


def tls_source(broker: tuple[MosquittoServer, Path, str], trust: str) -> MqttSource:
    """An MqttSource on the broker's TLS port that trusts it by `trust`: "pin", "ca", "pin+ca" (right),
    "wrong_pin" (one hex digit off) or "no_ca" (neither: the system store, which lacks our test CA)."""
    server, cert, fingerprint = broker
    assert server.tls_port is not None
    ways = set(trust.split("+"))
    kw: dict[str, object] = {"mqtt_tls": True}
    if "pin" in ways:
        kw["mqtt_cert_sha256"] = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    if "wrong_pin" in ways:
        kw["mqtt_cert_sha256"] = ("0" if fingerprint[0] != "0" else "1") + fingerprint[1:]
    if "ca" in ways:
        kw["mqtt_ca_file"] = cert
    return make_source(server.tls_port, portal_id=PORTAL, **kw)


@pytest.mark.parametrize("trust", ["pin", "ca", "pin+ca"])
def test_when_tls_with_right_ca_or_pin_then_data_flows(
    tls_broker: tuple[MosquittoServer, Path, str], trust: str
) -> None:
    source = tls_source(tls_broker, trust)
    with FakeGx(tls_broker[0].port), started(source, until=has_voltage) as (_, events):
        assert observed(events, "shunt", "/Dc/0/Voltage") == [53.27]


@pytest.mark.parametrize("trust", ["wrong_pin", "no_ca"])
def test_when_tls_certificate_not_trusted_then_no_connection(
    tls_broker: tuple[MosquittoServer, Path, str], trust: str
) -> None:
    source = tls_source(tls_broker, trust)
    with started(source) as (sink, _):
        wait_until(lambda: source.counters().get("errors_connect", 0) >= 2, timeout_s=8)
        assert source.counters().get("connections", 0) == 0
        assert source.state()["shunt"] == "disconnected"
        assert sink.snapshot() == []


def test_when_the_sink_fails_once_then_the_client_reconnects_and_keeps_going(
    mosquitto: MosquittoServer, fake_gx: FakeGx
) -> None:
    source = make_source(mosquitto.port, portal_id=PORTAL)
    with started(source, until=has_voltage, sink=Collected(fail_first=1)):
        assert source.counters()["errors_internal"] == 1
