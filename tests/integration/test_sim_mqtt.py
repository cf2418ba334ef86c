"""The simulated GX's MQTT side on a real mosquitto: Venus (dbus-flashmq) semantics."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import pytest

from collector.simulator.gx import GxSimulator
from collector.simulator.mqtt_publisher import ROLE_TOPIC, topic_for
from collector.simulator.recording import MqttMessage
from deploy.localservices import MosquittoServer
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

T = 20_401 * 86_400 + 13 * 3600 + 17
P = "c0619ab2f4e1"


class Clock:
    def __init__(self, t: float | None = None) -> None:
        self.t = t

    def __call__(self) -> float:
        return time.time() if self.t is None else self.t


@dataclass(frozen=True)
class Msg:
    mono_s: float
    topic: str
    payload: bytes
    retain: bool

    def value(self) -> object:
        return json.loads(self.payload)["value"]


class Listener:
    """A plain MQTT client recording every N/ message (the collector's point of view)."""

    def __init__(self, port: int) -> None:
        self.messages: list[Msg] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"N/{P}/#")
        self.client.loop_start()
        assert self._subscribed.wait(5)

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Msg(time.monotonic(), msg.topic, bytes(msg.payload), bool(msg.retain)))

    def snapshot(self, since: float = 0.0) -> list[Msg]:
        with self._lock:
            return [m for m in self.messages if m.mono_s >= since]

    def wait_for(self, pred: Callable[[Msg], bool], timeout_s: float = 5.0, since: float = 0.0) -> Msg:
        """The first message (received since `since`) that satisfies `pred`."""
        return wait_until(
            lambda: next((m for m in self.snapshot(since) if pred(m)), None),
            timeout_s,
            "the expected message",
            max_poll_s=0.02,
        )

    def publish(self, topic: str, payload: bytes | str = b"") -> None:
        self.client.publish(topic, payload, qos=0).wait_for_publish(2)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


STARTUP = (f"N/{P}/keepalive", f"N/{P}/system/0/Serial")  # sent at plugin start; may race a subscription


def completed(m: Msg) -> bool:
    return m.topic == f"N/{P}/full_publish_completed"


@pytest.fixture
def make_sim(mosquitto: MosquittoServer) -> Iterator[Callable[..., GxSimulator]]:
    sims: list[GxSimulator] = []

    def make(**kw: object) -> GxSimulator:
        kw.setdefault("clock", Clock(T))
        sim = GxSimulator(seed=7, modbus_port=None, mqtt_port=mosquitto.port, **kw).start()  # type: ignore[arg-type]
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture
def listener(mosquitto: MosquittoServer) -> Iterator[Listener]:
    lst = Listener(mosquitto.port)
    yield lst
    lst.close()


def full_publish(listener: Listener, payload: bytes | str = b"", topic: str = f"R/{P}/keepalive") -> list[Msg]:
    since = time.monotonic()
    listener.publish(topic, payload)
    listener.wait_for(completed, since=since)
    return listener.snapshot(since)


def test_when_nobody_sent_a_keepalive_then_only_the_retained_serial_arrives(
    make_sim: Callable[..., GxSimulator], mosquitto: MosquittoServer
) -> None:
    make_sim()
    late = Listener(mosquitto.port)  # subscribes after the simulator started
    try:
        serial = late.wait_for(lambda m: m.topic == f"N/{P}/system/0/Serial")
        assert serial.retain
        assert serial.value() == P
        time.sleep(1.5)
        others = [m for m in late.snapshot() if m.topic != f"N/{P}/system/0/Serial"]
        # at most the plugin's start-up N/<portal>/keepalive "1" (if it raced our subscription); no values
        assert [(m.topic, m.payload) for m in others] in ([], [(f"N/{P}/keepalive", b"1")])
    finally:
        late.close()


def test_when_keepalive_with_echo_then_full_republish_ends_with_the_token(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    sim = make_sim()
    body = json.dumps({"keepalive-options": [{"full-publish-completed-echo": "tok-42"}]})
    got = full_publish(listener, body)
    marker = next(m for m in got if completed(m))
    assert marker.payload == b'{"full-publish-completed-echo":"tok-42","value":%d}' % T  # compact, sorted keys
    before_marker = [m for m in got if m.mono_s <= marker.mono_s and not completed(m)]  # the marker comes last
    topics = {m.topic: m for m in before_marker}
    truth = sim.truth(T)
    assert topics[f"N/{P}/battery/0/Dc/0/Voltage"].value() == truth[("shunt", "/Dc/0/Voltage")]
    assert topics[f"N/{P}/battery/512/Voltages/Cell16"].value() == truth[("bms", "/Voltages/Cell16")]
    assert topics[f"N/{P}/battery/512/System/Temperature1"].value() == truth[("bms", "/System/Temperature1")]
    assert not [t for t in topics if "/Temperatures/" in t]  # not a Victron path
    assert topics[f"N/{P}/battery/512/Balances/Cell3"].value() == truth[("bms", "/Balances/Cell3")]
    assert topics[f"N/{P}/battery/0/ProductId"].value() == 0x0141
    assert topics[f"N/{P}/system/0/Ac/PvOnGrid/L1/Power"].payload == b'{"value":null}'
    assert f"N/{P}/system/0/Timestamp" not in topics  # Modbus-only
    assert topics[f"N/{P}/settings/0/Settings/CGwacs/BatteryLife/MinimumSocLimit"].payload == (
        b'{"max":100,"min":0,"value":20.0}'
    )
    published = {k for k in truth if k != ("system", "/Timestamp")}
    assert set(topics) - {f"N/{P}/keepalive"} == {topic_for(P, *k) for k in published}
    assert all(not m.retain for m in before_marker if not m.topic.endswith("/Serial"))


def test_when_keepalive_is_legacy_serial_read_then_full_republish(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    make_sim()
    got = full_publish(listener, topic=f"R/{P}/system/0/Serial")
    marker = next(m for m in got if completed(m))
    assert "full-publish-completed-echo" not in json.loads(marker.payload)
    assert len(got) > 150


def test_when_values_do_not_change_then_nothing_but_heartbeats_is_published(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    clock = Clock(T)
    sim = make_sim(clock=clock, heartbeat_s=0.5)
    full_publish(listener)
    since = time.monotonic()
    time.sleep(2.0)
    quiet = listener.snapshot(since)
    assert quiet
    assert {m.topic for m in quiet} == {f"N/{P}/heartbeat"}
    assert 3 <= len(quiet) <= 5  # every 0.5 s
    clock.t = T + 1  # one second later: only what changed is published, with the new values
    since = time.monotonic()
    time.sleep(3.5)
    changed = [m for m in listener.snapshot(since) if not m.topic.endswith("/heartbeat")]
    truth0, truth1 = sim.truth(T), sim.truth(T + 1)
    moved = {k for k in truth1 if truth1[k] != truth0[k] and k != ("system", "/Timestamp")}
    assert moved
    assert len(changed) == len(moved)  # each changed topic exactly once, nothing else
    for m in changed:
        role = {topic: name for name, topic in ROLE_TOPIC.items()}
        svc = "/".join(m.topic.split("/")[2:4])
        path = "/" + "/".join(m.topic.split("/")[4:])
        assert m.value() == truth1[(role[svc], path)]


def test_when_running_live_then_sources_keep_their_cadence(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    make_sim(clock=Clock(None))
    full_publish(listener)
    since = time.monotonic()
    time.sleep(6.5)
    got = listener.snapshot(since)
    shunt_v = [m.mono_s for m in got if m.topic == f"N/{P}/battery/0/Dc/0/Current"]
    system = [m.mono_s for m in got if m.topic == f"N/{P}/system/0/Dc/Battery/Current"]
    assert all(b - a >= 0.8 for a, b in itertools.pairwise(system))  # at most once a second (+ delivery jitter)
    assert all(b - a >= 0.8 for a, b in itertools.pairwise(shunt_v))  # ~1-1.5 s
    beats = [m for m in got if m.topic == f"N/{P}/heartbeat"]
    assert len(beats) in (2, 3)
    assert all(2.8 <= b.mono_s - a.mono_s <= 3.4 for a, b in itertools.pairwise(beats))  # every 3 s
    per_topic: dict[str, list[bytes]] = {}
    for m in got:
        if not m.topic.endswith("/heartbeat"):
            per_topic.setdefault(m.topic, []).append(m.payload)
    assert per_topic  # values did change in 6 s of a cycling day
    for payloads in per_topic.values():  # change-only: a topic never repeats an unchanged payload
        assert all(a != b for a, b in itertools.pairwise(payloads))


def test_when_keepalives_stop_then_publishing_stops_without_nulls(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    make_sim(clock=Clock(None), keepalive_timeout_s=2.0, heartbeat_s=0.5)
    full_publish(listener)
    time.sleep(2.5)
    since = time.monotonic()
    time.sleep(1.5)
    assert listener.snapshot(since) == []
    got = full_publish(listener)  # a new keepalive brings everything back
    assert len(got) > 150


def test_when_suppress_republish_then_only_the_timer_is_refreshed(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    make_sim(clock=Clock(T), keepalive_timeout_s=3.0, heartbeat_s=0.5)  # values stand still
    full_publish(listener)
    time.sleep(0.1)
    since = time.monotonic()
    for _ in range(6):
        listener.publish(f"R/{P}/keepalive", json.dumps({"keepalive-options": ["suppress-republish"]}))
        time.sleep(0.7)
    got = listener.snapshot(since)
    assert {m.topic for m in got} == {f"N/{P}/heartbeat"}, [m.topic for m in got][:10]  # no dump, no marker
    late = [m.mono_s - since for m in got if m.mono_s > since + 3.3]
    assert late, [round(m.mono_s - since, 2) for m in got]  # still alive past the 3 s timeout


def test_when_keepalives_flood_then_at_most_3_full_republishes_a_second_and_the_rest_are_dropped(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    """dbus-flashmq's keepAliveTokens: 3 per second; a keepalive without a token gets no dump and no marker."""
    make_sim()
    time.sleep(1.1)  # a full bucket
    since = time.monotonic()
    for n in range(12):
        listener.client.publish(
            f"R/{P}/keepalive", json.dumps({"keepalive-options": [{"full-publish-completed-echo": f"t{n}"}]})
        )
    sent_s = time.monotonic() - since
    listener.wait_for(lambda m: completed(m) and b'"t2"' in m.payload, since=since)
    time.sleep(1.5)
    got = listener.snapshot(since)
    echoed = [json.loads(m.payload)["full-publish-completed-echo"] for m in got if completed(m)]
    assert echoed[:3] == ["t0", "t1", "t2"]  # the first three always find a token
    assert len(echoed) <= 3 * (int(sent_s) + 2) < 12  # the others are dropped silently: no marker
    dumps = [m for m in got if m.topic == f"N/{P}/battery/0/ProductId"]  # a constant: only sent in full dumps
    assert len(dumps) == len(echoed)  # one whole dump per accepted keepalive, none for a dropped one


def test_when_suppress_republish_appears_anywhere_then_it_wins_over_an_echo(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    make_sim(clock=Clock(T), heartbeat_s=0.5)
    full_publish(listener)
    since = time.monotonic()
    both = {"keepalive-options": ["suppress-republish", {"full-publish-completed-echo": "tok"}]}
    listener.publish(f"R/{P}/keepalive", json.dumps(both))
    listener.publish(f"R/{P}/keepalive", b"not json, but suppress-republish")
    time.sleep(1.5)
    assert {m.topic for m in listener.snapshot(since)} == {f"N/{P}/heartbeat"}


def test_when_the_keepalive_is_a_read_of_the_serial_then_the_serial_is_republished_too(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    make_sim()
    time.sleep(0.5)  # past the start-up Serial
    since = time.monotonic()
    listener.publish(f"R/{P}/system/0/Serial", json.dumps({"keepalive-options": ["suppress-republish"]}))
    serial = listener.wait_for(lambda m: m.topic == f"N/{P}/system/0/Serial", since=since)
    assert serial.payload == b'{"value":"%s"}' % P.encode()
    listener.wait_for(lambda m: m.topic == f"N/{P}/heartbeat", since=since)  # and it was a keepalive


def test_when_a_device_drops_then_its_topics_get_empty_payloads_and_come_back(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    sim = make_sim()
    full = full_publish(listener)
    bms_topics = {m.topic for m in full if m.topic.startswith(f"N/{P}/battery/512/")}
    since = time.monotonic()
    sim.faults.drop_device("bms")
    listener.wait_for(lambda m: m.topic == f"N/{P}/battery/512/Voltages/Cell16" and m.payload == b"", since=since)
    time.sleep(0.3)
    empties = {m.topic for m in listener.snapshot(since) if m.payload == b""}
    assert empties == bms_topics
    again = full_publish(listener)
    assert not any(m.topic.startswith(f"N/{P}/battery/512/") for m in again)
    since = time.monotonic()
    sim.faults.restore_device("bms")
    back = listener.wait_for(lambda m: m.topic == f"N/{P}/battery/512/Voltages/Cell1", since=since)
    assert back.value() == sim.truth(T)[("bms", "/Voltages/Cell1")]


def test_when_a_device_drops_without_any_keepalive_then_every_item_it_has_is_blanked(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    """State::remove_dbus_service blanks every item of the service, whether or not a client kept it alive or
    had seen the item."""
    sim = make_sim()
    time.sleep(0.3)
    since = time.monotonic()
    sim.faults.drop_device("bms")
    listener.wait_for(lambda m: m.topic == f"N/{P}/battery/512/Voltages/Cell16" and m.payload == b"", since=since)
    time.sleep(0.3)
    empties = {m.topic for m in listener.snapshot(since) if m.payload == b""}
    assert empties == {topic_for(P, *k) for k in sim.truth(T) if k[0] == "bms"}


def test_when_a_client_writes_then_it_is_recorded_and_ignored(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    sim = make_sim()
    listener.publish(f"W/{P}/settings/0/Settings/CGwacs/BatteryLife/MinimumSocLimit", '{"value": 50}')
    got = full_publish(listener)
    soc_limit = next(m for m in got if m.topic.endswith("/BatteryLife/MinimumSocLimit"))
    assert soc_limit.value() == 20.0
    writes = [r for r in sim.received if isinstance(r, MqttMessage) and r.is_write]
    assert [(w.topic, w.payload) for w in writes] == [
        (f"W/{P}/settings/0/Settings/CGwacs/BatteryLife/MinimumSocLimit", b'{"value": 50}')
    ]
    assert any(isinstance(r, MqttMessage) and r.topic == f"R/{P}/keepalive" for r in sim.received)


def test_when_a_read_request_arrives_then_that_topic_or_subtree_is_republished(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    make_sim()
    since = time.monotonic()
    listener.publish(f"R/{P}/battery/512/Voltages")
    listener.wait_for(lambda m: m.topic.endswith("/Voltages/Cell16"), since=since)
    listener.publish(f"R/{P}/battery/0/Dc/0/Voltage")
    listener.wait_for(lambda m: m.topic == f"N/{P}/battery/0/Dc/0/Voltage", since=since)
    time.sleep(0.3)
    topics = sorted(m.topic for m in listener.snapshot(since) if m.topic not in STARTUP)
    cells = [f"N/{P}/battery/512/Voltages/Cell{n}" for n in range(1, 17)]
    extra = [f"N/{P}/battery/512/Voltages/Diff", f"N/{P}/battery/512/Voltages/Sum"]
    assert topics == sorted([*cells, *extra, f"N/{P}/battery/0/Dc/0/Voltage"])


def test_when_keepalives_are_ignored_then_nothing_is_published(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    sim = make_sim()
    sim.faults.ignore_keepalives(True)
    since = time.monotonic()
    listener.publish(f"R/{P}/keepalive")
    time.sleep(1.5)
    assert [m for m in listener.snapshot(since) if m.topic not in STARTUP] == []
    sim.faults.ignore_keepalives(False)
    assert len(full_publish(listener)) > 150


def test_when_the_bms_service_hangs_then_the_heartbeat_goes_on_and_only_its_topics_stop(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    clock = Clock(T)
    sim = make_sim(clock=clock, heartbeat_s=0.5)
    full_publish(listener)
    sim.faults.hang_service("bms")
    held = {m.topic: m.payload for m in full_publish(listener) if "/battery/512/" in m.topic}
    since = time.monotonic()
    for step in range(1, 4):
        clock.t = T + 300 * step  # every value of the site moves
        time.sleep(1.2)
    changed = listener.snapshot(since)
    assert any(m.topic == f"N/{P}/heartbeat" for m in changed), "the plugin's heartbeat timer goes on"
    assert any("/system/0/" in m.topic for m in changed), "other services keep publishing changes"
    assert not [m.topic for m in changed if "/battery/512/" in m.topic], "the hung BMS publishes nothing new"
    again = {m.topic: m.payload for m in full_publish(listener) if "/battery/512/" in m.topic}
    assert again == held, "a full republish sends the plugin's cached (held) values"
    sim.faults.hang_service("bms", on=False)
    listener.wait_for(lambda m: "/battery/512/" in m.topic, since=time.monotonic())


def test_when_frozen_then_no_publishes_and_no_heartbeat(
    make_sim: Callable[..., GxSimulator], listener: Listener
) -> None:
    sim = make_sim(clock=Clock(None), heartbeat_s=0.5)
    full_publish(listener)
    sim.faults.freeze(True)
    time.sleep(0.2)
    since = time.monotonic()
    listener.publish(f"R/{P}/keepalive")
    time.sleep(1.5)
    assert listener.snapshot(since) == []
    sim.faults.freeze(False)
    listener.wait_for(lambda m: m.topic.endswith("/heartbeat"), since=since)


@pytest.mark.parametrize("kind", ["non_json", "wrong_type", "nan", "oversized", "unknown_topic"])
def test_when_sending_garbage_then_the_malformed_message_arrives(
    make_sim: Callable[..., GxSimulator], listener: Listener, kind: str
) -> None:
    sim = make_sim()
    since = time.monotonic()
    sim.faults.send_garbage(kind)
    first = listener.wait_for(lambda m: m.topic not in STARTUP, since=since)
    if kind == "non_json":
        with pytest.raises(ValueError):
            json.loads(first.payload)
    elif kind == "wrong_type":
        assert json.loads(first.payload) == {"value": "abc"}
    elif kind == "nan":
        assert first.payload == b'{"value": NaN}'
    elif kind == "oversized":
        assert len(first.payload) > 1 << 20
    else:
        assert first.topic == f"N/{P}/battery/0/Totally/Unknown/Path"


def test_when_the_broker_restarts_then_the_simulator_reconnects_and_republishes_the_serial(
    make_sim: Callable[..., GxSimulator], mosquitto: MosquittoServer
) -> None:
    make_sim()
    mosquitto.stop()
    mosquitto.start()
    first = Listener(mosquitto.port)
    try:  # live (retain=0) if we subscribed before the simulator reconnected, else the retained copy
        assert first.wait_for(lambda m: m.topic == f"N/{P}/system/0/Serial", timeout_s=10).value() == P
        since = time.monotonic()
        first.publish(f"R/{P}/keepalive")
        first.wait_for(completed, since=since)  # the simulator re-subscribed to R/
    finally:
        first.close()
    late = Listener(mosquitto.port)
    try:
        assert late.wait_for(lambda m: m.topic == f"N/{P}/system/0/Serial").retain
    finally:
        late.close()


def test_when_a_client_asks_like_venus_influx_loader_then_the_gx_identity_arrives(
    make_sim: Callable[..., GxSimulator], mosquitto: MosquittoServer
) -> None:
    """victronenergy/venus-influx-loader @29a9171 (src/server/loader.ts) stores nothing until it has
    N/<id>/settings/0/Settings/SystemSetup/SystemName, which it asks for with a read request; clients also
    identify the GX by platform/0's firmware and model and each battery by /Serial, /FirmwareVersion and
    /ProductName."""
    sim = make_sim()
    loader = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    seen: dict[str, bytes] = {}
    portal: list[str] = []
    lock = threading.Lock()

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            seen[msg.topic] = bytes(msg.payload)
            if not portal and msg.topic.endswith("/system/0/Serial"):
                portal.append(json.loads(msg.payload)["value"])

    loader.on_message = on_message
    loader.connect("127.0.0.1", mosquitto.port)
    loader.loop_start()
    try:
        loader.subscribe("N/+/#")  # the loader's manual connection: detect the portal id from system/Serial
        wait_until(lambda: portal, 5, "the portal id from system/0/Serial")
        assert portal == [P]
        name_topic = f"N/{P}/settings/0/Settings/SystemSetup/SystemName"
        loader.publish(f"R/{P}/settings/0/Settings/SystemSetup/SystemName", b"", qos=1)  # before any keepalive
        wait_until(lambda: name_topic in seen, 5, "the answer to the SystemName read request")
        assert json.loads(seen[name_topic]) == {"value": sim.truth(T)[("settings", "/Settings/SystemSetup/SystemName")]}
        loader.publish(f"R/{P}/system/0/Serial", b"", qos=1)  # the loader's first keepalive: a full republish
        wanted = {
            f"N/{P}/platform/0/Firmware/Installed/Version",
            f"N/{P}/platform/0/Device/Model",
            *(
                f"N/{P}/{svc}/{path}"
                for svc in ("battery/0", "battery/512")
                for path in ("Serial", "FirmwareVersion", "ProductName")
            ),
        }
        wait_until(lambda: wanted <= set(seen), 5, f"the identity topics {sorted(wanted)}")
        assert json.loads(seen[f"N/{P}/platform/0/Firmware/Installed/Version"])["value"] == "v3.60"
        assert json.loads(seen[f"N/{P}/platform/0/Device/Model"])["value"] == "Cerbo GX"
        assert all(json.loads(seen[t])["value"] not in (None, "") for t in wanted)
    finally:
        loader.disconnect()
        loader.loop_stop()
