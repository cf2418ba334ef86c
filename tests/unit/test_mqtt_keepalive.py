"""The keepalive / liveness state machine, driven with explicit times (no broker)."""

from __future__ import annotations

import itertools
import json
import random

from bess_common.backoff import Backoff
from collector.config import GxSettings
from collector.observation import MULTI_ROLES, Confirm
from collector.sources.mqtt_keepalive import KeepaliveSession, Publish, Reconnect, Subscribe, Timers, Unsubscribe
from collector.sources.mqtt_protocol import SERIAL_DISCOVERY_TOPIC, SUPPRESS_REPUBLISH

PORTAL = "c0619ab1f2e3"


def session(portal_id: str = PORTAL, at: float = 0.0) -> KeepaliveSession:
    counter = itertools.count(1)
    return KeepaliveSession(
        GxSettings(portal_id=portal_id),
        Timers(25.0, 300.0, 10.0, 15.0),
        at,
        token_factory=lambda: f"tok{next(counter)}",
    )


def token_of(action: object) -> str:
    assert isinstance(action, Publish)
    return str(json.loads(action.payload)["keepalive-options"][0]["full-publish-completed-echo"])


def test_when_portal_configured_then_subscribe_and_full_keepalive_with_token_at_once() -> None:
    actions = session().start()
    assert isinstance(actions[0], Subscribe) and f"N/{PORTAL}/battery/512/#" in actions[0].topics
    assert isinstance(actions[1], Publish) and actions[1].topic == f"R/{PORTAL}/keepalive"
    assert token_of(actions[1]) == "tok1"


def test_when_portal_unknown_then_discover_first_then_subscribe() -> None:
    s = session(portal_id="")
    assert s.start() == [Subscribe((SERIAL_DISCOVERY_TOPIC,))]
    actions = s.on_portal(PORTAL, 0.5)
    assert actions[0] == Unsubscribe((SERIAL_DISCOVERY_TOPIC,))
    assert isinstance(actions[1], Subscribe) and f"N/{PORTAL}/heartbeat" in actions[1].topics
    assert token_of(actions[2]) == "tok1"
    assert s.on_portal("other", 0.6) == []


def test_when_echo_matches_then_snapshot_complete_and_heartbeats_confirm() -> None:
    s = session()
    s.start()
    assert s.on_heartbeat(1.0) is None  # not complete yet: nothing confirmed
    assert not s.on_full_publish_completed("someone-else")
    assert not s.complete
    assert s.on_full_publish_completed("tok1")
    confirm = s.on_heartbeat(3.0)
    assert confirm == Confirm("mqtt", 3.0, ("system", "settings", "shunt", "bms", *MULTI_ROLES))


def test_when_old_firmware_sends_no_echo_then_marker_still_completes() -> None:
    s = session()
    s.start()
    assert s.on_full_publish_completed(None)


def test_when_marker_arrives_before_any_full_keepalive_then_ignored() -> None:
    s = session(portal_id="")
    s.start()
    assert not s.on_full_publish_completed(None)


def test_when_time_passes_then_suppress_every_interval_and_full_refresh_with_new_token() -> None:
    s = session()
    s.start()
    s.on_full_publish_completed("tok1")
    sent: list[tuple[float, bytes]] = []
    for tenth in range(0, 6100):
        now = tenth / 10
        if tenth % 30 == 0:
            s.on_heartbeat(now)
        for action in s.tick(now):
            assert isinstance(action, Publish), action
            sent.append((now, action.payload))
    suppress = [t for t, p in sent if p == SUPPRESS_REPUBLISH]
    full = [t for t, p in sent if p != SUPPRESS_REPUBLISH]
    assert suppress[0] == 25.0
    assert all(0 < b - a <= 25.0 for a, b in itertools.pairwise([0.0, *sorted(suppress + full)]))
    assert full == [300.0, 600.0]
    assert [token_of(Publish("", p)) for t, p in sent if p != SUPPRESS_REPUBLISH] == ["tok2", "tok3"]
    assert s.complete


def test_when_no_heartbeat_for_stall_timeout_then_reconnect_once() -> None:
    s = session()
    s.start()
    s.on_heartbeat(2.0)
    assert s.tick(12.0) == []
    assert s.tick(12.1) == [Reconnect("no heartbeat for 10.1 s")]
    assert all(not isinstance(a, Reconnect) for a in s.tick(13.0))


def test_when_no_heartbeat_ever_then_stall_counts_from_connect() -> None:
    s = session(at=100.0)
    s.start()
    assert all(not isinstance(a, Reconnect) for a in s.tick(110.0))
    assert any(isinstance(a, Reconnect) for a in s.tick(110.5))


def test_when_heartbeat_returns_after_stall_then_stall_can_fire_again() -> None:
    s = session()
    s.start()
    assert any(isinstance(a, Reconnect) for a in s.tick(11.0))
    s.on_heartbeat(12.0)
    assert any(isinstance(a, Reconnect) for a in s.tick(22.5))


def test_when_full_publish_never_completes_then_asked_again_with_new_token() -> None:
    s = session()
    s.start()
    s.on_heartbeat(3.0)
    s.on_heartbeat(6.0)
    s.on_heartbeat(9.0)
    s.on_heartbeat(12.0)
    actions = s.tick(15.0)
    assert len(actions) == 1 and token_of(actions[0]) == "tok2"
    assert s.on_full_publish_completed("tok1")  # a late echo of the first request still counts


def test_when_plugin_restarts_then_snapshot_incomplete_and_full_keepalive_again() -> None:
    s = session()
    s.start()
    s.on_full_publish_completed("tok1")
    actions = s.on_plugin_restart(50.0)
    assert not s.complete
    assert token_of(actions[0]) == "tok2"
    assert s.on_heartbeat(51.0) is None


def test_when_plugin_starts_while_our_full_keepalive_is_unanswered_then_ask_again_at_once() -> None:
    s = session()
    s.start()  # full keepalive tok1 sent at t=0, before the plugin listened (e.g. after a broker restart)
    actions = s.on_plugin_restart(2.0)
    assert [token_of(a) for a in actions] == ["tok2"]
    assert s.on_plugin_restart(2.5) == []  # at most one per second while still unanswered
    assert s.on_full_publish_completed("tok2")


def test_when_plugin_starts_right_after_our_unanswered_full_keepalive_then_re_ask_a_second_later() -> None:
    s = session()
    s.start()  # tok1 at t=0 is lost: the plugin announces itself 50 ms later, before it heard us
    assert s.on_plugin_restart(0.05) == []
    assert s.tick(0.5) == []  # at most one full keepalive per second while unanswered
    assert [token_of(a) for a in s.tick(1.0)] == ["tok2"]
    assert s.tick(1.1) == []  # once
    assert s.on_full_publish_completed("tok2")


def test_when_the_plugin_answers_before_the_deferred_re_ask_then_none_is_sent() -> None:
    s = session()
    s.start()
    assert s.on_plugin_restart(0.05) == []
    assert s.on_full_publish_completed("tok1")
    assert s.tick(1.0) == []


def test_when_plugin_restart_marker_repeats_then_at_most_one_full_keepalive_per_wait() -> None:
    s = session()
    s.start()
    s.on_full_publish_completed("tok1")
    assert s.on_plugin_restart(5.0) == []  # right after our own full keepalive: nothing to redo
    assert len(s.on_plugin_restart(20.0)) == 1
    assert s.on_full_publish_completed("tok2")
    assert s.on_plugin_restart(21.0) == []  # answered: the marker again within the wait changes nothing
    assert s.on_plugin_restart(34.0) == []


def test_when_reconnects_fail_then_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(initial_s=0.5, max_s=8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    nominal = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert all(d / 2 <= got <= d for got, d in zip(delays, nominal, strict=True))
    assert len(set(delays)) == len(delays)  # jittered: no two clients retry in lockstep
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_when_full_publish_marker_never_comes_then_re_asks_back_off_to_the_refresh_period() -> None:
    s = session()
    s.start()
    asked = []
    for tenth in range(0, 12_000):
        now = tenth / 10
        if tenth % 30 == 0:
            s.on_heartbeat(now)
        asked += [now for a in s.tick(now) if isinstance(a, Publish) and b"echo" in a.payload]
    assert asked[:4] == [15.0, 45.0, 105.0, 225.0]  # waits of 15, 30, 60, 120 s
    assert all(b - a == 300.0 for a, b in itertools.pairwise(asked[4:]))  # then at most every 300 s
