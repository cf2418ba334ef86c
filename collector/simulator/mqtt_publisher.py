"""The GX's MQTT side (FlashMQ + dbus-flashmq semantics) published onto a real broker with paho-mqtt.

Topics `N/<portal>/<service>/<instance><path>` with compact JSON, keys sorted (`{"value":X}`, as nlohmann's
dump() writes it in victronenergy/dbus-flashmq @bb470b7, src/types.cpp Item::as_json) at QoS 0, not
retained, except the retained `N/<portal>/system/0/Serial`. Change-only, at each source's own cadence, and
only while a keepalive arrived within `keepalive_timeout_s`. Keepalives as src/state.cpp
State::handle_keepalive: `R/<portal>/keepalive` (or `R/<portal>/system/0/Serial`, which is also a read
request) triggers a full republish ending in `full_publish_completed` (echoing the client's token), at most
KEEPALIVE_TOKENS per second (the rest refresh the timer only: no dump, no marker); "suppress-republish"
anywhere in the payload only refreshes the timer. `R/...` read requests republish a topic or a subtree,
alive or not; `W/...` is recorded and never acted upon. A removed device blanks every item it has.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt

from collector.simulator.columns import Key, Value
from collector.simulator.devices import DEVICES
from collector.simulator.faults import Faults
from collector.simulator.recording import MqttMessage, Recorder
from collector.simulator.schedule import PLAN_SETTING_LIMITS
from collector.simulator.truth import MODBUS_ONLY

ROLE_TOPIC = {
    "system": "system/0",
    "settings": "settings/0",
    "platform": "platform/0",
    "shunt": "battery/0",
    "bms": "battery/512",
    **{role: f"{service}/{instance}" for role, (service, instance) in DEVICES.items()},
}
SETTING_LIMITS = {
    "/Settings/CGwacs/BatteryLife/State": (0, 12),
    "/Settings/CGwacs/BatteryLife/MinimumSocLimit": (0, 100),
    "/Settings/CGwacs/Hub4Mode": (0, 3),
    "/Settings/CGwacs/BatteryLife/SocLimit": (0, 100),
    **PLAN_SETTING_LIMITS,
}
KEEPALIVE_TOKENS = 3  # full republishes per second (dbus-flashmq src/state.h); refilled every second
SUPPRESS_MARKER = b"suppress-republish"  # found by substring, not by parsing (State::handle_keepalive)


def topic_for(portal_id: str, role: str, path: str) -> str:
    """The N/ topic of a (role, D-Bus path)."""
    return f"N/{portal_id}/{ROLE_TOPIC[role]}{path}"


def compact_json(body: dict[str, Any]) -> bytes:
    """JSON as nlohmann's dump() writes it: no spaces, keys sorted (its objects are std::map)."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def payload_for(role: str, path: str, value: Value) -> bytes:
    """The JSON payload: {"value":X}; numeric settings also carry min/max; invalid -> {"value":null}."""
    if role == "settings" and path in SETTING_LIMITS:
        low, high = SETTING_LIMITS[path]
        return compact_json({"value": value, "min": low, "max": high})
    kind = type(value)
    if (kind is float and math.isfinite(value)) or kind is int:  # type: ignore[arg-type]
        text = repr(value)  # what json.dumps writes for these (float.__repr__ / int.__repr__): same bytes, faster
    elif value is None:
        text = "null"
    else:
        text = json.dumps(value)
    return b'{"value":' + text.encode() + b"}"


def keepalive_options(payload: bytes) -> tuple[bool, str | None]:
    """(suppress_republish, echo_token) from a keepalive payload, as dbus-flashmq reads them: suppress when
    the bytes "suppress-republish" appear anywhere; the echo token of the last object that has one."""
    suppress = SUPPRESS_MARKER in payload
    try:
        body = json.loads(payload) if payload.strip() else None
    except ValueError:
        return suppress, None
    options = body.get("keepalive-options", []) if isinstance(body, dict) else []
    token = None
    for option in options if isinstance(options, list) else []:
        if isinstance(option, dict) and isinstance(option.get("full-publish-completed-echo"), str):
            token = option["full-publish-completed-echo"]
    return suppress, token


class _Cadence:
    """When each source publishes next: system/settings 1 s, shunt 1-1.5 s, BMS 1-3 s (seeded jitter)."""

    def __init__(self, seed: int, now: float) -> None:
        self._rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x3117])
        self.next_due = dict.fromkeys(ROLE_TOPIC, now)

    def due(self, now: float) -> list[str]:
        """Roles due now; schedules their next turn."""
        roles = [role for role, at in self.next_due.items() if at <= now]
        for role in roles:
            if role == "shunt":
                gap = 1.0 + float(self._rng.uniform(0.0, 0.5))
            elif role == "bms":
                gap = float(self._rng.uniform(1.0, 3.0))
            else:
                gap = 1.0
            self.next_due[role] = now + gap  # from the actual publish: never faster than the source rate
        return roles


class MqttPublisher:
    """Publishes the simulated GX onto a broker; runs a paho network thread and one publisher thread."""

    def __init__(
        self,
        host: str,
        port: int,
        portal_id: str,
        *,
        faults: Faults,
        values: Callable[[], dict[Key, Value]],
        recorder: Recorder,
        clock: Callable[[], float],
        seed: int = 0,
        keepalive_timeout_s: float = 60.0,
        heartbeat_s: float = 3.0,
        tick_s: float = 0.05,
        reconnect_delay_s: float | tuple[float, float] = (1.0, 2.0),
    ) -> None:
        self.host, self.port, self.portal_id = host, port, portal_id
        self._faults, self._values, self._recorder, self._clock = faults, values, recorder, clock
        self._seed, self._timeout_s, self._heartbeat_s, self._tick_s = seed, keepalive_timeout_s, heartbeat_s, tick_s
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._published: dict[str, bytes] = {}  # topic -> last payload sent (change detection)
        self._settings_payloads: dict[str, tuple[Value, bytes]] = {}  # settings rarely change: their JSON, kept
        self._topics: dict[Key, str] = {}  # (role, path) -> N/ topic, built once per key
        self._last_keepalive: float | None = None
        self._last_heartbeat = 0.0
        self._tokens = KEEPALIVE_TOKENS
        self._token_second = -1
        self._pending_full: list[str | None] = []
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-gx-{portal_id}-{id(self)}")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        low, high = reconnect_delay_s if isinstance(reconnect_delay_s, tuple) else (reconnect_delay_s,) * 2
        delay_set: Any = self._client.reconnect_delay_set  # paho types the delays as int; it sleeps floats fine
        delay_set(min_delay=low, max_delay=high)  # tests restart the broker

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> None:
        """Connect, publish the retained Serial and N/<portal>/keepalive "1" (on every connect), start publishing."""
        self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            self._client.loop_stop()
            raise ConnectionError(f"simulator could not connect to MQTT broker {self.host}:{self.port}")
        self._thread = threading.Thread(target=self._run, name="sim-mqtt", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing and disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self._client.disconnect()
        self._client.loop_stop()

    def alive(self, now: float | None = None) -> bool:
        """Whether a keepalive arrived within the timeout."""
        now = time.monotonic() if now is None else now
        return self._last_keepalive is not None and now - self._last_keepalive < self._timeout_s

    # --- fault hooks (called from any thread; executed on the publisher thread) ------------------------
    def device_dropped(self, role: str) -> None:
        """Zero-byte payloads on every topic of the device."""
        self._inbox.put(("drop", role))

    def device_restored(self, role: str) -> None:
        """The device's topics count as changed again."""
        self._inbox.put(("restore", role))

    def send_garbage(self, kind: str) -> None:
        """Publish one kind of malformed message (see garbage_messages)."""
        self._inbox.put(("garbage", kind))

    # --- paho callbacks (network thread) ---------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            return
        client.subscribe([(f"R/{self.portal_id}/#", 0), (f"W/{self.portal_id}/#", 0)])
        self._publish_serial()

    def _on_subscribe(self, client: mqtt.Client, _userdata: Any, _mid: Any, _codes: Any, _props: Any) -> None:
        # Ready only once the broker acknowledged R/ and W/: a keepalive sent earlier would be lost. On a GX
        # the broker and the plugin are one process, so every (re)connect is a plugin start, announced with
        # N/<portal>/keepalive "1" (clients whose keepalive went unheard ask again).
        client.publish(f"N/{self.portal_id}/keepalive", b"1", qos=0)
        self._connected.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._recorder.add(MqttMessage(msg.topic, bytes(msg.payload)))
        self._inbox.put(("msg", (msg.topic, bytes(msg.payload))))

    # --- publisher thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        cadence = _Cadence(self._seed, time.monotonic())
        while not self._stop.is_set():
            self._drain_inbox()
            now = time.monotonic()
            frozen = self._faults.frozen_values() is not None
            if not frozen and self._pending_full:
                self._full_publishes()
            due = cadence.due(now)
            if not frozen and self.alive(now):
                if due:
                    self._publish_changes(due)
                if now - self._last_heartbeat >= self._heartbeat_s:
                    self._last_heartbeat = now
                    self._send(f"N/{self.portal_id}/heartbeat", compact_json({"value": int(self._clock())}))
            self._stop.wait(self._tick_s)

    def _drain_inbox(self) -> None:
        second = int(time.monotonic())
        if second != self._token_second:  # dbus-flashmq refills its keepalive tokens once a second
            self._token_second, self._tokens = second, KEEPALIVE_TOKENS
        while True:
            try:
                kind, arg = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "msg":
                self._handle_message(*arg)
            elif kind == "drop":
                self._drop(arg)
            elif kind == "restore":
                prefix = f"N/{self.portal_id}/{ROLE_TOPIC[arg]}/"
                self._published = {t: p for t, p in self._published.items() if not t.startswith(prefix)}
            elif kind == "garbage":
                for topic, payload in garbage_messages(self.portal_id, arg):
                    self._send(topic, payload)

    def _handle_message(self, topic: str, payload: bytes) -> None:
        p = self.portal_id
        if topic in (f"R/{p}/keepalive", f"R/{p}/system/0/Serial") and not self._faults.keepalives_ignored():
            suppress, token = keepalive_options(payload)
            self._last_keepalive = time.monotonic()
            if not suppress:
                if self._tokens > 0:  # more than KEEPALIVE_TOKENS a second: dropped silently (timer refreshed)
                    self._pending_full.append(token)
                self._tokens -= 1
        if topic.startswith(f"R/{p}/") and topic != f"R/{p}/keepalive" and self._faults.frozen_values() is None:
            self._read_request(topic[len(f"R/{p}/") :])  # system/0/Serial is a keepalive AND a read request

    def _topic(self, key: Key) -> str:
        topic = self._topics.get(key)
        if topic is None:
            topic = self._topics[key] = topic_for(self.portal_id, *key)
        return topic

    def _current(self, roles: frozenset[str] | None = None) -> dict[str, tuple[str, str, Value]]:
        """topic -> (role, path, value) for every present device (of `roles` when given)."""
        dropped = self._faults.dropped()
        out: dict[str, tuple[str, str, Value]] = {}
        for key, value in self._values().items():
            role = key[0]
            if role not in dropped and (roles is None or role in roles) and key not in MODBUS_ONLY:
                out[self._topic(key)] = (role, key[1], value)
        return out

    def _publish_changes(self, roles: list[str]) -> None:
        published = self._published
        cached = self._settings_payloads
        for topic, (role, path, value) in self._current(frozenset(roles)).items():
            if role == "settings":  # hundreds of plan slots, constant for hours: no JSON encoding each second
                found = cached.get(topic)
                if found is None or found[0] != value or type(found[0]) is not type(value):
                    found = cached[topic] = (value, payload_for(role, path, value))
                payload = found[1]
            else:
                payload = payload_for(role, path, value)
            if published.get(topic) != payload:
                self._send(topic, payload)

    def _full_publishes(self) -> None:
        """One full republish per accepted keepalive, each ended by its own marker (State::publish_all)."""
        pending, self._pending_full = self._pending_full, []
        for token in pending:
            for topic, (role, path, value) in self._current().items():
                self._send(topic, payload_for(role, path, value))
            body: dict[str, Any] = {"value": int(self._clock())}
            if token is not None:
                body["full-publish-completed-echo"] = token
            self._send(f"N/{self.portal_id}/full_publish_completed", compact_json(body))

    def _read_request(self, rest: str) -> None:
        target = f"N/{self.portal_id}/{rest}"
        for topic, (role, path, value) in self._current().items():
            if topic == target or topic.startswith(target.rstrip("/") + "/"):
                self._send(topic, payload_for(role, path, value))

    def _drop(self, role: str) -> None:
        """A zero-byte payload on every item the removed service had, alive or not (State::remove_dbus_service:
        Item::publish(true) for each item; the retained Serial is never blanked)."""
        prefix = f"N/{self.portal_id}/{ROLE_TOPIC[role]}/"
        known = {self._topic(key) for key in self._values() if key[0] == role and key not in MODBUS_ONLY}
        known |= {t for t in self._published if t.startswith(prefix)}
        if self._faults.frozen_values() is None:
            for topic in sorted(known):
                if topic != f"N/{self.portal_id}/system/0/Serial":
                    self._client.publish(topic, b"", qos=0)
        for topic in known:
            self._published.pop(topic, None)

    def _publish_serial(self) -> None:
        body = compact_json({"value": self.portal_id})
        self._client.publish(f"N/{self.portal_id}/system/0/Serial", body, qos=0, retain=True)

    def _send(self, topic: str, payload: bytes) -> None:
        retain = topic == f"N/{self.portal_id}/system/0/Serial"
        self._client.publish(topic, payload, qos=0, retain=retain)
        self._published[topic] = payload


def garbage_messages(portal_id: str, kind: str) -> list[tuple[str, bytes]]:
    """The malformed messages of one garbage kind (topics are real ones unless kind is unknown_topic)."""
    shunt = f"N/{portal_id}/battery/0"
    if kind == "non_json":
        return [(f"{shunt}/Dc/0/Voltage", b"{not json"), (f"{shunt}/Dc/0/Current", b"\xff\xfe\x00garbage")]
    if kind == "wrong_type":
        return [
            (f"{shunt}/Dc/0/Current", b'{"value": "abc"}'),
            (f"N/{portal_id}/battery/512/Voltages/Cell1", b'{"value": [3.3, 3.4]}'),
            (f"N/{portal_id}/system/0/Dc/Battery/Soc", b"[1, 2]"),
            (f"{shunt}/Soc", b'{"value": {"nested": 1}}'),
        ]
    if kind == "nan":
        return [
            (f"{shunt}/Dc/0/Voltage", b'{"value": NaN}'),
            (f"{shunt}/Dc/0/Current", b'{"value": Infinity}'),
            (f"{shunt}/Dc/0/Power", b'{"value": -Infinity}'),
        ]
    if kind == "oversized":
        pad = b"x" * ((1 << 20) + 1024)
        return [(f"{shunt}/Dc/0/Voltage", b'{"value": 52.0, "pad": "' + pad + b'"}')]
    if kind == "unknown_topic":
        return [
            (f"{shunt}/Totally/Unknown/Path", b'{"value": 1}'),
            (f"N/{portal_id}/frobnicator/7/Dc/0/Voltage", b'{"value": 12.5}'),
            (f"N/{portal_id}/battery", b'{"value": 1}'),
            (f"N/{portal_id}/battery/notanumber/Dc/0/Voltage", b'{"value": 12.5}'),
        ]
    raise ValueError(f"unknown garbage kind {kind!r}")
