"""Pure parts of the simulated GX's MQTT side: topics, payloads, keepalive options, garbage."""

from __future__ import annotations

import json

import pytest

from collector.simulator.mqtt_publisher import garbage_messages, keepalive_options, payload_for, topic_for


def test_topics_follow_venus_service_and_instance() -> None:
    assert topic_for("abc", "shunt", "/Dc/0/Voltage") == "N/abc/battery/0/Dc/0/Voltage"
    assert topic_for("abc", "bms", "/System/Temperature3") == "N/abc/battery/512/System/Temperature3"
    assert topic_for("abc", "system", "/Serial") == "N/abc/system/0/Serial"
    assert topic_for("abc", "settings", "/Settings/CGwacs/Hub4Mode") == "N/abc/settings/0/Settings/CGwacs/Hub4Mode"


def test_payloads_are_compact_value_objects_with_sorted_keys_and_null_for_invalid() -> None:
    """nlohmann's dump(): no spaces, object keys sorted (dbus-flashmq src/types.cpp Item::as_json)."""
    assert payload_for("shunt", "/Dc/0/Voltage", 20.43000030517578) == b'{"value":20.43000030517578}'
    assert payload_for("shunt", "/TimeToGo", None) == b'{"value":null}'
    assert payload_for("settings", "/Settings/CGwacs/Hub4Mode", 1) == b'{"max":3,"min":0,"value":1}'
    assert payload_for("bms", "/Io/AllowToCharge", True) == b'{"value":true}'  # a D-Bus boolean
    assert payload_for("platform", "/Device/Model", "Cerbo GX") == b'{"value":"Cerbo GX"}'


def test_plan_settings_carry_the_limits_dbus_systemcalc_gives_them() -> None:
    start = payload_for("settings", "/Settings/DynamicEss/Schedule/47/Start", 1_762_655_400)
    assert start == b'{"max":0,"min":0,"value":1762655400}'  # 0, 0: unbounded
    assert json.loads(payload_for("settings", "/Settings/DynamicEss/Schedule/0/TargetSoc", 95.5)) == {
        "max": 100.0,
        "min": 0.0,
        "value": 95.5,
    }
    day = payload_for("settings", "/Settings/CGwacs/BatteryLife/Schedule/Charge/4/Day", -7)
    assert day == b'{"max":11,"min":-11,"value":-7}'


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", (False, None)),
        (b'{"keepalive-options": ["suppress-republish"]}', (True, None)),
        (b'{"keepalive-options": [{"full-publish-completed-echo": "x1"}]}', (False, "x1")),
        (b'{"keepalive-options": ["suppress-republish", {"full-publish-completed-echo": "x2"}]}', (True, "x2")),
        (b'{ "keepalive-options" : ["suppress-republish"] }', (True, None)),  # as venus-influx-loader sends it
        (b"not json", (False, None)),
        (b"not json but suppress-republish", (True, None)),  # found by substring, the JSON is not parsed for it
        (b'["suppress-republish"]', (True, None)),
        (b'{"keepalive-options": "suppress-republish"}', (True, None)),
        (
            b'{"keepalive-options": [{"full-publish-completed-echo": "a"}, {"full-publish-completed-echo": "b"}]}',
            (False, "b"),
        ),
    ],
)
def test_keepalive_options_are_parsed_like_dbus_flashmq(payload: bytes, expected: tuple[bool, str | None]) -> None:
    assert keepalive_options(payload) == expected


def test_garbage_kinds_are_really_malformed() -> None:
    (_t, non_json), *_ = garbage_messages("p", "non_json")
    with pytest.raises(ValueError):
        json.loads(non_json)
    nan_payloads = [p for _t, p in garbage_messages("p", "nan")]
    assert b"NaN" in nan_payloads[0] and b"Infinity" in nan_payloads[1]
    assert len(garbage_messages("p", "oversized")[0][1]) > 1 << 20
    wrong = [json.loads(p) for _t, p in garbage_messages("p", "wrong_type")]
    assert {"value": "abc"} in wrong
    assert any(not isinstance(w, dict) for w in wrong)
    unknown = [t for t, _p in garbage_messages("p", "unknown_topic")]
    assert "N/p/battery/0/Totally/Unknown/Path" in unknown
    with pytest.raises(ValueError):
        garbage_messages("p", "nonsense")
