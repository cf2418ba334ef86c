"""The Venus keepalive / liveness state machine of one MQTT connection (pure: time is passed in).

Per connection: (discover the portal id) -> subscribe -> full keepalive with a unique echo token ->
snapshot complete when the matching `full_publish_completed` arrives. Then a suppress-republish
keepalive every `keepalive_interval_s`, a full one every `full_refresh_interval_s` (constants come
back), and a `Confirm` on each heartbeat while the snapshot is complete. No heartbeat for
`stall_timeout_s` -> Reconnect. The machine returns actions; the MQTT source performs them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from collector.config import GxSettings
from collector.observation import MULTI_ROLES, Confirm, Role
from collector.sources.mqtt_protocol import SERIAL_DISCOVERY_TOPIC, SUPPRESS_REPUBLISH, TopicMap, full_keepalive

FULL_PUBLISH_WAIT_S = 15.0  # re-ask if full_publish_completed has not come back by then
PENDING_RESEND_S = 1.0  # a plugin (re)start while our full keepalive is unanswered: re-ask, at most this often


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish `payload` to `topic` (always through the publish guard)."""

    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Subscribe to these topic filters."""

    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Drop these topic filters."""

    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Tear the connection down and start over (stall)."""

    reason: str


Action = Publish | Subscribe | Unsubscribe | Reconnect


def new_token() -> str:
    """A unique echo token for one full keepalive."""
    return f"bess-edge-{secrets.token_hex(6)}"


@dataclass(slots=True)
class Timers:
    """The periods that drive the machine (from CollectorSettings)."""

    keepalive_interval_s: float = 25.0
    full_refresh_interval_s: float = 300.0
    stall_timeout_s: float = 10.0
    full_publish_wait_s: float = FULL_PUBLISH_WAIT_S


@dataclass(slots=True)
class KeepaliveSession:
    """The life of one MQTT connection, from CONNACK to reconnect."""

    gx: GxSettings
    timers: Timers
    connected_at: float
    token_factory: Callable[[], str] = new_token
    portal: str | None = None
    complete: bool = False
    everything: bool = False  # subscribe to every topic (the long tail)
    last_heartbeat: float | None = None
    topic_map: TopicMap | None = None
    _tokens: set[str] = field(default_factory=set)
    _last_keepalive: float = 0.0
    _last_full: float = 0.0
    _unanswered: int = 0  # full keepalives re-sent without a matching full_publish_completed
    _stalled: bool = False
    _reask_at: float | None = None  # a plugin (re)start came too soon after our full keepalive: re-ask then

    def start(self) -> list[Action]:
        """Right after CONNACK: discover the portal id, or subscribe at once when configured."""
        if self.gx.portal_id:
            return self.on_portal(self.gx.portal_id, self.connected_at)
        return [Subscribe((SERIAL_DISCOVERY_TOPIC,))]

    def on_portal(self, portal: str, now: float) -> list[Action]:
        """The portal id is known: subscribe to the configured roles and ask for a full publish."""
        if self.portal is not None:
            return []
        self.portal = portal
        self.topic_map = TopicMap.from_settings(portal, self.gx, self.everything)
        actions: list[Action] = []
        if not self.gx.portal_id:
            actions.append(Unsubscribe((SERIAL_DISCOVERY_TOPIC,)))
        actions.append(Subscribe(tuple(self.topic_map.subscriptions())))
        actions.append(self._full(now))
        return actions

    def _full(self, now: float) -> Publish:
        assert self.portal is not None
        token = self.token_factory()
        self._tokens.add(token)
        self._last_full = self._last_keepalive = now
        self._reask_at = None
        return Publish(f"R/{self.portal}/keepalive", full_keepalive(token))

    def _unanswered_wait(self) -> float:
        """15 s, 30 s, 60 s ... capped at the full refresh period: a GX that never sends the marker
        (firmware without it) is not asked for a full republish every 15 s forever."""
        wait = self.timers.full_publish_wait_s * 2**self._unanswered
        return min(wait, max(self.timers.full_publish_wait_s, self.timers.full_refresh_interval_s))

    def on_full_publish_completed(self, echo: str | None) -> bool:
        """True when this marker completes the snapshot (our token, or no echo on old firmware)."""
        if self.complete or not self._tokens:
            return False
        if echo is None or echo in self._tokens:
            self.complete = True
            self._reask_at = None  # the plugin heard us after all
            return True
        return False  # another client's full publish

    def on_heartbeat(self, now: float) -> Confirm | None:
        """A heartbeat: liveness; while the snapshot is complete it confirms every delivered value."""
        self.last_heartbeat = now
        self._stalled = False
        if not self.complete or self.topic_map is None:
            return None
        roles: tuple[Role, ...] = tuple(dict.fromkeys((*self.topic_map.roles.values(), *MULTI_ROLES)))
        return Confirm("mqtt", now, roles)

    def refresh(self, now: float) -> list[Action]:
        """Ask for a full republish now (e.g. a device came back): the snapshot stays as it is."""
        return [self._full(now)] if self.portal is not None else []

    def on_plugin_restart(self, now: float) -> list[Action]:
        """`N/<id>/keepalive` from a (re)started plugin: our keepalive is forgotten, ask again.

        While our own full keepalive is still unanswered the plugin may not have seen it (it was not
        listening yet: after a broker restart we may reconnect first), so ask again, at most once per
        `PENDING_RESEND_S`: at once, or, when our request went out less than that ago, from `tick` once
        that much time has passed (dropping it would leave the data waiting for the unanswered re-ask).
        Otherwise rate-limited to one per `full_publish_wait_s`, so that a GX publishing this topic more
        often than at start-up can never drive a republish storm.
        """
        if self.portal is None:
            return []
        if not self.complete and now - self._last_full < PENDING_RESEND_S:
            self._reask_at = self._last_full + PENDING_RESEND_S
            return []
        if self.complete and now - self._last_full < self.timers.full_publish_wait_s:
            return []
        self.complete = False
        return [self._full(now)]

    def tick(self, now: float) -> list[Action]:
        """Timers: stall check, pending full publish, periodic keepalives."""
        since = self.last_heartbeat if self.last_heartbeat is not None else self.connected_at
        if not self._stalled and now - since > self.timers.stall_timeout_s:
            self._stalled = True
            return [Reconnect(f"no heartbeat for {now - since:.1f} s")]
        if self.portal is None:
            return []
        full = self._full_if_due(now)
        if full is not None:
            return [full]
        if now - self._last_keepalive >= self.timers.keepalive_interval_s:
            self._last_keepalive = now
            return [Publish(f"R/{self.portal}/keepalive", SUPPRESS_REPUBLISH)]
        return []

    def _full_if_due(self, now: float) -> Publish | None:
        """A full keepalive when one is due: the re-ask a plugin start deferred, the re-ask of an unanswered
        one (backing off), or the periodic full refresh."""
        if self._reask_at is not None and now >= self._reask_at:
            return self._full(now)
        if not self.complete and now - self._last_full >= self._unanswered_wait():
            self._unanswered += 1
            return self._full(now)
        if now - self._last_full >= self.timers.full_refresh_interval_s:
            return self._full(now)
        return None
