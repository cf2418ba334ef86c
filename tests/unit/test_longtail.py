"""The long tail's decisions: allow/deny, on change (and once per full republish), topic budget, rate caps."""

from __future__ import annotations

from collector.config import LongTailSettings
from collector.longtail import LongTail
from collector.observation import Invalid, TopicValue

T0_NS = 1_800_000_000_000_000_000


def _value(path: str, value: float | str | Invalid, *, service: str = "vebus", instance: int = 276,
           cycle: int = 1, mono_s: float = 100.0) -> TopicValue:  # fmt: skip
    return TopicValue(service, instance, path, value, cycle, mono_s, T0_NS + round(mono_s * 1e9))


def _tail(**settings: object) -> LongTail:
    return LongTail(LongTailSettings.model_validate(settings), "t")


def test_when_values_repeat_then_stored_on_change_and_once_per_full_republish() -> None:
    tail = _tail()
    offered = [
        _value("/Ac/Out/L1/P", 100.0),
        _value("/Ac/Out/L1/P", 100.0, mono_s=101),  # unchanged: skipped
        _value("/Ac/Out/L1/P", 120.0, mono_s=102),  # changed
        _value("/Ac/Out/L1/P", 120.0, cycle=2, mono_s=103),  # same value, new full republish: stored again
        _value("/ProductName", "MultiPlus-II 48/5000", mono_s=103),
        _value("/Ac/ActiveIn/L1/F", Invalid.NULL, mono_s=103),
    ]
    kept = [tail.offer(v) for v in offered]
    assert kept == [True, False, True, True, True, True]
    samples = tail.drain()
    assert [s.fields for s in samples] == [
        {"value": 100.0}, {"value": 120.0}, {"value": 120.0}, {"text": "MultiPlus-II 48/5000"}, {"invalid": True},
    ]  # fmt: skip
    assert samples[0].measurement == "gx_topic"
    assert samples[0].tags == {"site": "t", "service": "vebus", "instance": "276", "path": "/Ac/Out/L1/P"}
    assert samples[1].ts_ns == T0_NS + 102 * 10**9
    assert tail.drain() == []
    assert tail.counters()["unchanged"] == 1 and tail.counters()["stored"] == 5


def test_when_patterns_set_then_deny_wins_over_allow() -> None:
    tail = _tail(allow=["vebus/*", "solarcharger/*"], deny=["*/Mgmt/*", "solarcharger/*/History/*"])
    assert tail.offer(_value("/Ac/Out/L1/P", 1.0))
    assert not tail.offer(_value("/Mgmt/ProcessVersion", "1.2"))
    assert tail.offer(_value("/Yield/Power", 1.0, service="solarcharger", instance=279))
    assert not tail.offer(_value("/History/Daily/0/Yield", 1.0, service="solarcharger", instance=279))
    assert not tail.offer(_value("/Level", 50.0, service="tank", instance=20))
    assert tail.counters()["denied"] == 3


def test_default_deny_list_drops_tunnels_and_history() -> None:
    tail = _tail()
    assert not tail.offer(_value("/Interfaces/Mk2/Tunnel", "0a0b"))
    assert not tail.offer(_value("/History/Daily/3/MaxPower", 1.0, service="solarcharger", instance=279))
    assert tail.offer(_value("/Level", 50.0, service="tank", instance=20))


def test_when_one_device_floods_then_it_is_capped_and_the_others_keep_their_share() -> None:
    tail = _tail(device_rate_per_s=10.0, device_burst=20, rate_per_s=1000.0, burst=1000)
    flood = [
        _value(f"/Flood/{i % 50}", float(i), service="tank", instance=20, mono_s=100 + i / 1000) for i in range(2000)
    ]
    kept = sum(tail.offer(v) for v in flood)  # 2 s of 1000 values/s: burst 20 + 10/s x 2 s
    assert 38 <= kept <= 42
    assert tail.capped_devices() == {"tank/20": 2000 - kept}
    assert tail.offer(_value("/Ac/Out/L1/P", 5.0, mono_s=102.0)), "another device is not starved"


def test_when_everything_floods_then_the_total_cap_holds() -> None:
    tail = _tail(device_rate_per_s=1000.0, device_burst=1000, rate_per_s=5.0, burst=10)
    values = [_value("/X", float(i), service="tank", instance=i % 7, mono_s=100 + i / 100) for i in range(1000)]
    kept = sum(tail.offer(v) for v in values)  # 10 s: burst 10 + 5/s x 10 s
    assert 58 <= kept <= 61
    assert tail.capped_devices()["(all)"] == 1000 - kept


def test_when_new_topics_exceed_the_budget_then_they_are_dropped_and_known_ones_go_on() -> None:
    tail = _tail(max_topics=3)
    assert all(tail.offer(_value(f"/P{i}", 1.0)) for i in range(3))
    assert not tail.offer(_value("/P3", 1.0))
    assert tail.offer(_value("/P0", 2.0))
    assert tail.counters()["over_max_topics"] == 1 and tail.counters()["topics"] == 3
