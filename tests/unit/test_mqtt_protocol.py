"""Venus MQTT payloads, topics and the publish guard (pure)."""

from __future__ import annotations

import json

import pytest

from collector.config import GxSettings
from collector.observation import Invalid
from collector.sources.mqtt_protocol import (
    MAX_PAYLOAD_BYTES,
    SUPPRESS_REPUBLISH,
    Garbage,
    Gone,
    PublishRefused,
    Topic,
    TopicMap,
    check_publish,
    decode_payload,
    decode_tail_payload,
    echo_of,
    full_keepalive,
    portal_from_serial,
)

PORTAL = "c0619ab1f2e3"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"value": 53.27}', 53.27),
        (b'{"value": 20.43000030517578}', 20.43000030517578),
        (b'{"value": -12}', -12),
        (b'{"value": 0}', 0),
        (b'{"value": 3, "min": 0, "max": 10}', 3),
        (b'{"value": null}', Invalid.NULL),
        (b"", Gone.EMPTY),
        (b'{"value":true}', 1),  # a D-Bus boolean, as dbus-flashmq writes it
        (b'{"value":false}', 0),
        (b'{"value":3.31}', 3.31),  # compact, as nlohmann's dump() writes it
    ],
)
def test_when_payload_is_valid_then_value_decoded(payload: bytes, expected: object) -> None:
    assert decode_payload(payload) == expected


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"not json", "non_json"),
        (b"\xff\xfe\x00", "non_json"),
        (b'{"value": 1', "non_json"),
        (b"1", "no_value"),
        (b"[1, 2]", "no_value"),
        (b'{"val": 1}', "no_value"),
        (b'{"value": "53.2"}', "wrong_type"),
        (b'{"value": [1, 2]}', "wrong_type"),
        (b'{"value": {"a": 1}}', "wrong_type"),
        (b'{"value": NaN}', "nan"),
        (b'{"value": Infinity}', "nan"),
        (b'{"value": -Infinity}', "nan"),
        (b'{"value": 1e999}', "nan"),
        (b"[" * 100_000, "oversized"),
        (b'{"value": 1, "pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}', "oversized"),
        (b"[" * 50_000, "non_json"),  # deep nesting under the size limit: refused, not a crash
    ],
)
def test_when_payload_is_garbage_then_its_kind_is_named(payload: bytes, kind: str) -> None:
    assert decode_payload(payload) == Garbage(kind)


def test_when_payload_exactly_at_limit_then_parsed() -> None:
    head, tail = b'{"value": 1, "pad": "', b'"}'
    payload = head + b"x" * (MAX_PAYLOAD_BYTES - len(head) - len(tail)) + tail
    assert len(payload) == MAX_PAYLOAD_BYTES
    assert decode_payload(payload) == 1


def topics() -> TopicMap:
    return TopicMap.from_settings(PORTAL, GxSettings(shunt_instance=0, bms_instance=512))


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (f"N/{PORTAL}/battery/0/Dc/0/Voltage", Topic("value", "shunt", "/Dc/0/Voltage", "battery", 0)),
        (f"N/{PORTAL}/battery/512/Voltages/Cell3", Topic("value", "bms", "/Voltages/Cell3", "battery", 512)),
        (f"N/{PORTAL}/system/0/Dc/Battery/Soc", Topic("value", "system", "/Dc/Battery/Soc", "system", 0)),
        (
            f"N/{PORTAL}/settings/0/Settings/CGwacs/Hub4Mode",
            Topic("value", "settings", "/Settings/CGwacs/Hub4Mode", "settings", 0),
        ),
        (f"N/{PORTAL}/heartbeat", Topic("heartbeat")),
        (f"N/{PORTAL}/full_publish_completed", Topic("full_publish_completed")),
        (f"N/{PORTAL}/keepalive", Topic("keepalive")),
        (f"N/{PORTAL}/battery/7/Dc/0/Voltage", Topic("unknown")),
        (  # any instance of a multi-instance device is that device's role
            f"N/{PORTAL}/solarcharger/279/Yield/Power",
            Topic("value", "solarcharger", "/Yield/Power", "solarcharger", 279),
        ),
        (f"N/{PORTAL}/vebus/276/Ac/Out/L1/P", Topic("value", "vebus", "/Ac/Out/L1/P", "vebus", 276)),
        ("N/otherportal/battery/0/Dc/0/Voltage", Topic("unknown")),
        (f"N/{PORTAL}/battery/x/Dc/0/Voltage", Topic("unknown")),
        (f"N/{PORTAL}/battery/0", Topic("unknown")),
        (f"N/{PORTAL}/battery/0/Dc//Voltage", Topic("unknown")),
        (f"W/{PORTAL}/battery/0/Dc/0/Voltage", Topic("unknown")),
        ("garbage", Topic("unknown")),
    ],
)
def test_when_topic_parsed_then_role_and_path_found(topic: str, expected: Topic) -> None:
    assert topics().parse(topic) == expected


def test_when_subscriptions_built_then_only_configured_roles_and_markers() -> None:
    assert topics().subscriptions() == [
        f"N/{PORTAL}/system/0/#",
        f"N/{PORTAL}/settings/0/#",
        f"N/{PORTAL}/battery/0/#",
        f"N/{PORTAL}/battery/512/#",
        *(f"N/{PORTAL}/{role}/+/#" for role in ("vebus", "multi", "acsystem", "solarcharger", "grid", "acload")),
        f"N/{PORTAL}/pvinverter/+/#",
        f"N/{PORTAL}/heartbeat",
        f"N/{PORTAL}/full_publish_completed",
        f"N/{PORTAL}/keepalive",
    ]


def test_when_long_tail_on_then_one_subscription_and_other_services_parse_as_tail() -> None:
    everything = TopicMap.from_settings(PORTAL, GxSettings(shunt_instance=0, bms_instance=512), everything=True)
    assert everything.subscriptions() == [f"N/{PORTAL}/#"]
    assert everything.parse(f"N/{PORTAL}/tank/20/Level") == Topic("tail", None, "/Level", "tank", 20)
    assert everything.parse(f"N/{PORTAL}/battery/7/Soc") == Topic("tail", None, "/Soc", "battery", 7)
    assert everything.parse(f"N/{PORTAL}/battery/0/Dc/0/Voltage").kind == "value"  # a role stays a role
    for bad in (f"N/{PORTAL}/Tank/20/Level", f"N/{PORTAL}/tank/x/Level", f"N/{PORTAL}/tank/20", "N/other/tank/1/A"):
        assert everything.parse(bad) == Topic("unknown"), bad
    assert topics().parse(f"N/{PORTAL}/tank/20/Level") == Topic("unknown")  # long tail off


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"value": 3}', 3.0),
        (b'{"value": -1.5}', -1.5),
        (b'{"value": true}', 1.0),
        (b'{"value": "Quattro 48/5000"}', "Quattro 48/5000"),
        (b'{"value": null}', Invalid.NULL),
        (b'{"value": [1, {"b": 2, "a": 1}]}', '[1,{"a":1,"b":2}]'),
        (b'{"value": 1, "min": 0, "max": 5}', 1.0),
        (b"", Gone.EMPTY),
        (b"{nope", Garbage("non_json")),
        (b'{"value": NaN}', Garbage("nan")),
        (b'{"value": 1e999}', Garbage("nan")),
        (b'{"other": 1}', Garbage("no_value")),
    ],
)
def test_when_tail_payload_decoded_then_numbers_text_null_and_json(payload: bytes, expected: object) -> None:
    assert decode_tail_payload(payload) == expected


def test_when_serial_message_then_portal_from_topic() -> None:
    assert portal_from_serial(f"N/{PORTAL}/system/0/Serial", json.dumps({"value": PORTAL}).encode()) == PORTAL
    assert portal_from_serial(f"N/{PORTAL}/system/0/Serial", b"junk") is None
    assert portal_from_serial(f"N/{PORTAL}/system/1/Serial", b'{"value": "x"}') is None
    assert portal_from_serial("N/a+b/system/0/Serial", b'{"value": "x"}') is None


def test_when_full_publish_completed_then_echo_extracted() -> None:
    assert echo_of(b'{"full-publish-completed-echo": "tok1", "value": 1700000000}') == "tok1"
    assert echo_of(b'{"value": 1700000000}') is None
    assert echo_of(b"nonsense") is None
    assert json.loads(full_keepalive("tok1")) == {"keepalive-options": [{"full-publish-completed-echo": "tok1"}]}


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        (f"R/{PORTAL}/keepalive", full_keepalive("abc")),
        (f"R/{PORTAL}/keepalive", SUPPRESS_REPUBLISH),
        (f"R/{PORTAL}/keepalive", b""),
        (f"R/{PORTAL}/system/0/Serial", b""),
        (f"R/{PORTAL}/battery/512/Voltages", b""),
        (f"R/{PORTAL}/battery/512/Info/MaxChargeVoltage", b""),
    ],
)
def test_when_keepalive_or_read_request_then_allowed(topic: str, payload: bytes) -> None:
    check_publish(PORTAL, topic, payload)


@pytest.mark.parametrize(
    ("portal", "topic", "payload"),
    [
        (PORTAL, f"W/{PORTAL}/settings/0/Settings/CGwacs/BatteryLife/MinimumSocLimit", b'{"value": 10}'),
        (PORTAL, f"W/{PORTAL}/vebus/276/Mode", b'{"value": 4}'),
        (PORTAL, f"N/{PORTAL}/battery/0/Soc", b'{"value": 1}'),
        (PORTAL, f"R/{PORTAL}/battery/512/Voltages", b'{"value": 1}'),  # read requests carry nothing
        (PORTAL, f"R/{PORTAL}/battery/+/Soc", b""),
        (PORTAL, f"R/{PORTAL}/#", b""),
        (PORTAL, f"R/{PORTAL}/battery/abc/Soc", b""),
        (PORTAL, f"R/{PORTAL}/battery/0", b""),
        (PORTAL, "R/otherportal/keepalive", b""),
        (PORTAL, f"R/{PORTAL}/keepalive", b'{"value": 1}'),
        (PORTAL, f"R/{PORTAL}/keepalive", b"not json"),
        (PORTAL, f"R/{PORTAL}/keepalive", b'{"keepalive-options": [], "x": 1}'),
        (PORTAL, f"R/{PORTAL}/keepalive/extra", b""),
        (PORTAL, f"R/{PORTAL}/system/0/Serial/../../W", b""),
        ("", "R//keepalive", b""),
        ("+", "R/+/keepalive", b""),
        (PORTAL, "", b""),
    ],
)
def test_when_anything_else_published_then_refused(portal: str, topic: str, payload: bytes) -> None:
    with pytest.raises(PublishRefused):
        check_publish(portal, topic, payload)
