"""The MQTT source: subscribes to the GX's N/ topics and keeps the Venus keepalive alive.

One thread owns the paho client and calls `loop()` itself, so callbacks, the keepalive machine
(collector/sources/mqtt_keepalive.py) and the reconnect logic all run on it: no locks around the
session. Every connection starts from scratch (fresh client, discovery, subscribe, full keepalive);
a stall (no heartbeat for `stall_timeout_s`) or a lost connection ends it, and the next one follows
after an exponential backoff with jitter, reset by the first heartbeat. paho's own auto-reconnect is
not used.
"""

from __future__ import annotations

import secrets
import time

import paho.mqtt.client as mqtt

from bess_common.backoff import Backoff
from bess_common.errors import ConfigError
from bess_common.logs import RepeatCounter, get_logger
from collector.config import CollectorSettings, GxSettings
from collector.gx.tables import plan_field_for, stored
from collector.observation import (
    MULTI_ROLES,
    DeviceGone,
    Event,
    Observation,
    ObservationSink,
    Role,
    SourceState,
    TopicValue,
)
from collector.sources.mqtt_client import ClientFactory, GuardedMqttClient, default_client_factory
from collector.sources.mqtt_keepalive import (
    Action,
    KeepaliveSession,
    Publish,
    Reconnect,
    Subscribe,
    Timers,
    Unsubscribe,
    new_token,
)
from collector.sources.mqtt_protocol import (
    MAX_PAYLOAD_BYTES,
    SUPPRESS_REPUBLISH,
    Decoded,
    Garbage,
    Gone,
    TailDecoded,
    Topic,
    decode_payload,
    decode_tail_payload,
    echo_of,
    portal_from_serial,
)
from collector.sources.mqtt_tls import tls_context
from collector.sources.threaded import ThreadedSource

ROLES: tuple[Role, ...] = ("system", "settings", "shunt", "bms")
MQTT_KEEPALIVE_S = 15  # MQTT PINGREQ period (transport level; the Venus keepalive is separate)
CONNACK_TIMEOUT_S = 10.0
LOOP_STEP_S = 0.1


def _check_tls(gx: GxSettings) -> None:
    """Fail at start-up, as a config error, on a malformed pin or an unreadable CA file."""
    try:
        tls_context(gx)
    except (ValueError, OSError) as exc:
        raise ConfigError([f"gx.mqtt_tls: {exc}"]) from None


def _short(payload: bytes, limit: int = 60) -> str:
    """The start of a payload, for a log line (what the GX sent, never all of it)."""
    text = payload[:limit].decode("utf-8", "replace")
    return text + "..." if len(payload) > limit else text


class MqttSource(ThreadedSource):
    """Venus MQTT client on its own thread; implements collector.observation.Source.

    counters(): messages, observations, tail_values, connections, stalls, keepalives, device_gone, errors_* and
    garbage_*. With the long tail on it subscribes to every topic and hands what the tables do not map over as
    TopicValue records (the agent's LongTail filters and caps them)."""

    name = "mqtt"
    thread_name = "mqtt-client"

    def __init__(
        self,
        gx: GxSettings,
        collector: CollectorSettings,
        client_factory: ClientFactory = default_client_factory,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__()
        self._gx = gx
        self._timers = Timers(
            collector.keepalive_interval_s, collector.full_refresh_interval_s, collector.stall_timeout_s
        )
        self._tail = collector.long_tail.enabled
        self._republish = 0  # full keepalives sent: each starts a new full-republish cycle
        self._client_factory = client_factory
        self._backoff = backoff or Backoff(initial_s=0.5, max_s=8.0)
        self._client_id = f"bess-edge-{secrets.token_hex(4)}"
        self._log = get_logger("collector.sources.mqtt")
        self._garbage = RepeatCounter(self._log)
        self._internal = RepeatCounter(self._log)
        self._repeat_counters.update(garbage=self._garbage)
        if gx.mqtt_tls:
            _check_tls(gx)
        self._link: SourceState = "starting"
        self._gone: set[str] = set()  # device keys: the role, or "<role>/<instance>" for MULTI_ROLES
        self._devices: set[str] = set()  # the MULTI_ROLES devices seen ("vebus/276", ...)
        # owned by the loop thread
        self._client: mqtt.Client | None = None
        self._session: KeepaliveSession | None = None
        self._pending: list[Event] = []
        self._stored_cache: dict[tuple[str, str], bool] = {}
        self._connack_refused = False
        self._portal_seen = ""

    # --- Source protocol (start, stop, counters, loop_age_s: ThreadedSource) ---------------------
    def state(self) -> dict[str, SourceState]:
        """Per role (and per instance of the MULTI_ROLES devices seen, as "vebus/276"): connected (snapshot
        complete), starting, stalled, disconnected or absent."""
        with self._lock:
            keys = [*ROLES, *sorted(self._devices)]
            return {key: ("absent" if key in self._gone else self._link) for key in keys}

    @property
    def portal(self) -> str:
        """The portal id in use (configured or discovered), '' until known."""
        return self._portal_seen

    # --- bookkeeping -----------------------------------------------------------------------------
    def _set_link(self, state: SourceState, event: str, level: str = "info", **kw: object) -> None:
        with self._lock:
            changed = self._link != state
            self._link = state
        if changed:
            getattr(self._log, level)(event, host=self._gx.host, port=self._gx.mqtt_port, **kw)

    # --- connection loop -------------------------------------------------------------------------
    def _run(self, sink: ObservationSink) -> None:
        while not self._stop.is_set():
            self._beat()
            try:
                self._one_connection(sink)
            except Exception as exc:  # loop boundary: a bug or a failing sink must not end the source
                self._bump("errors_internal")
                self._internal.hit(type(exc).__name__, "mqtt_internal_error", error=repr(exc), exc_info=True)
                self._set_link("disconnected", "mqtt_disconnected", "warning", reason=repr(exc))
            if not self._stop.is_set():
                self._stop.wait(self._backoff.next_delay())

    def _one_connection(self, sink: ObservationSink) -> None:
        client = self._client_factory(self._gx, self._client_id)
        if not isinstance(client, GuardedMqttClient):
            raise TypeError("the MQTT client factory must return a GuardedMqttClient")
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        self._client, self._session, self._connack_refused = client, None, False
        try:
            client.connect(self._gx.host, self._gx.mqtt_port, keepalive=MQTT_KEEPALIVE_S)
        except (OSError, ValueError) as exc:  # refused, unreachable, TLS failure or pin mismatch
            self._bump("errors_connect")
            self._set_link("disconnected", "mqtt_disconnected", "warning", reason=str(exc))
            return
        try:
            self._drive(client, sink)
        finally:
            self._close(client)
            self._flush(sink)

    def _drive(self, client: mqtt.Client, sink: ObservationSink) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            self._beat()
            rc = client.loop(timeout=LOOP_STEP_S)
            self._flush(sink)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                self._set_link("disconnected", "mqtt_disconnected", "warning", reason=mqtt.error_string(rc))
                return
            if self._connack_refused:
                return
            if self._session is None:
                if time.monotonic() - started > CONNACK_TIMEOUT_S:
                    self._set_link("disconnected", "mqtt_disconnected", "warning", reason="no CONNACK")
                    return
                continue
            for action in self._session.tick(time.monotonic()):
                if isinstance(action, Reconnect):
                    self._bump("stalls")
                    self._set_link("stalled", "mqtt_stalled", "warning", reason=action.reason)
                    return
                self._perform(action)

    def _close(self, client: mqtt.Client) -> None:
        try:
            client.disconnect()
            client.loop(timeout=0.01)
        except (OSError, ValueError):
            pass
        self._session = None

    def _flush(self, sink: ObservationSink) -> None:
        if self._pending:
            events, self._pending = self._pending, []
            sink(events)

    def _perform(self, action: Action) -> None:
        client = self._client
        assert client is not None
        if isinstance(action, Subscribe):
            client.subscribe([(topic, 0) for topic in action.topics])
        elif isinstance(action, Unsubscribe):
            client.unsubscribe(list(action.topics))
        elif isinstance(action, Publish):
            client.publish(action.topic, action.payload)
            full = action.payload != SUPPRESS_REPUBLISH
            self._republish += full
            self._bump("keepalives_full" if full else "keepalives_suppress")

    # --- paho callbacks (loop thread) ------------------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: object, _properties: object = None
    ) -> None:
        if getattr(reason, "is_failure", False):
            self._connack_refused = True
            self._bump("errors_connack")
            self._set_link("disconnected", "mqtt_connect_refused", "warning", reason=str(reason))
            return
        self._bump("connections")
        self._session = KeepaliveSession(
            self._gx, self._timers, time.monotonic(), token_factory=new_token, everything=self._tail
        )
        with self._lock:
            stalled = self._link == "stalled"
            if not stalled:
                self._link = "starting"
        # while the GX stays frozen every reconnect succeeds and stalls again: log those at debug only
        log = self._log.debug if stalled else self._log.info
        log("mqtt_connected", host=self._gx.host, port=self._gx.mqtt_port, tls=self._gx.mqtt_tls)
        if self._gx.portal_id:
            self._use_portal(self._gx.portal_id)
        for action in self._session.start():
            self._perform(action)

    def _use_portal(self, portal: str) -> None:
        if isinstance(self._client, GuardedMqttClient):
            self._client.guard_portal = portal
        if portal != self._portal_seen:
            self._portal_seen = portal
            self._log.info("mqtt_portal", portal=portal, configured=bool(self._gx.portal_id))

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        self._bump("messages")
        if len(message.payload) > MAX_PAYLOAD_BYTES:
            self._garbage.hit("oversized", "mqtt_garbage", topic=message.topic[:200], bytes=len(message.payload))
            return
        payload = bytes(message.payload)
        session = self._session
        if session is None:
            return
        now = time.monotonic()
        if session.portal is None:
            portal = portal_from_serial(message.topic, payload)
            if portal is not None:
                self._use_portal(portal)
                for action in session.on_portal(portal, now):
                    self._perform(action)
            return
        assert session.topic_map is not None
        self._dispatch(session, session.topic_map.parse(message.topic), message.topic, payload, now)

    def _dispatch(self, session: KeepaliveSession, topic: Topic, raw_topic: str, payload: bytes, now: float) -> None:
        if topic.kind == "value" and topic.role is not None:
            self._on_value(topic, topic.role, payload, now)
        elif topic.kind == "tail":
            self._on_tail(topic, payload, now)
        elif topic.kind == "heartbeat":
            self._on_heartbeat(session, now)
        elif topic.kind == "full_publish_completed":
            if session.on_full_publish_completed(echo_of(payload)):
                with self._lock:
                    was = self._link
                event = "mqtt_recovered" if was == "stalled" else "mqtt_snapshot_complete"
                self._set_link("connected", event, portal=session.portal)
        elif topic.kind == "keepalive":
            self._log.info("mqtt_plugin_restarted", portal=session.portal)
            for action in session.on_plugin_restart(now):
                self._perform(action)
        else:
            self._garbage.hit("unknown_topic", "mqtt_garbage", topic=raw_topic[:200])

    def _on_heartbeat(self, session: KeepaliveSession, now: float) -> None:
        confirm = session.on_heartbeat(now)
        self._backoff.reset()
        if confirm is not None:
            self._pending.append(confirm)
            with self._lock:
                was = self._link
            if was != "connected":
                self._set_link("connected", "mqtt_recovered", previous=was)

    def _on_value(self, topic: Topic, role: Role, payload: bytes, now: float) -> None:
        path = topic.path
        multi = role in MULTI_ROLES
        device = f"{role}/{topic.instance}" if multi else role
        if multi and device not in self._devices:
            with self._lock:
                self._devices.add(device)
        if not payload:
            self._device_gone(role, device, topic.instance if multi else None, now)
            return
        if device in self._gone:
            self._device_back(device, now)
        if not self._stored(role, path):  # a path of a mapped device that no table maps
            self._bump("unmapped")
            self._on_tail(topic, payload, now)
            return
        decoded = self._decode(role, path, payload)
        if isinstance(decoded, Garbage | Gone):  # not Gone: the payload is not empty
            kind = getattr(decoded, "kind", "empty")
            self._garbage.hit(kind, "mqtt_garbage", role=role, path=path, payload=_short(payload))
            return
        self._bump("observations")
        self._pending.append(Observation(role, path, decoded, "mqtt", now, topic.instance if multi else 0))

    def _on_tail(self, topic: Topic, payload: bytes, now: float) -> None:
        if not self._tail:
            return
        decoded = decode_tail_payload(payload)
        if decoded is Gone.EMPTY:  # the device left: its last values stay as they were stored
            return
        if isinstance(decoded, Garbage):
            self._garbage.hit(decoded.kind, "mqtt_garbage", service=topic.service, path=topic.path[:200])
            return
        self._bump("tail_values")
        self._pending.append(
            TopicValue(topic.service, topic.instance, topic.path, decoded, self._republish, now, time.time_ns())
        )

    def _stored(self, role: Role, path: str) -> bool:
        known = self._stored_cache.get((role, path))
        if known is None:
            known = self._stored_cache[(role, path)] = stored(role, path)
        return known

    @staticmethod
    def _decode(role: Role, path: str, payload: bytes) -> Decoded | TailDecoded:
        """A number (or null); text only for the plan's text values (the GX's time zone), where a number is
        garbage of kind wrong_type, as text is for a number."""
        plan = plan_field_for(role, path)
        if plan is not None and plan[0].type == "str":
            decoded = decode_tail_payload(payload)
            return Garbage("wrong_type") if isinstance(decoded, float) else decoded
        return decode_payload(payload)

    def _device_gone(self, role: Role, device: str, instance: int | None, now: float) -> None:
        with self._lock:
            first = device not in self._gone
            self._gone.add(device)
        if first:
            self._bump("device_gone")
            self._log.warning("mqtt_device_gone", role=device)
            self._pending.append(DeviceGone(role, "mqtt", now, instance))

    def _device_back(self, device: str, now: float) -> None:
        with self._lock:
            self._gone.discard(device)
        self._log.info("mqtt_device_back", role=device)
        if self._session is not None:  # values that did not change since would stay gone: ask for all
            for action in self._session.refresh(now):
                self._perform(action)
