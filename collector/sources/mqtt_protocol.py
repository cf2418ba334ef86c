"""Venus MQTT, pure: topics, payload decoding, keepalive payloads and the publish guard.

Topics are `N/<portal>/<service>/<instance><D-Bus path>`; payloads `{"value": X}`, `{"value": null}` for
an invalid value, and zero bytes when the device left D-Bus. A D-Bus boolean arrives as JSON true/false
(victronenergy/dbus-flashmq @bb470b7, src/vevariant.cpp, VeVariant::as_json_value) and decodes to 1/0.
Everything else is garbage of a named kind: counted, logged once per kind by the source, never turned into
an Observation.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from enum import Enum

from bess_common.errors import FatalError
from collector.config import GxSettings
from collector.observation import MULTI_ROLES, Invalid, Role

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_KEEPALIVE_BYTES = 1024
SUPPRESS_REPUBLISH = b'{"keepalive-options":["suppress-republish"]}'
SERIAL_DISCOVERY_TOPIC = "N/+/system/0/Serial"

_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]+$")  # portal ids and D-Bus path elements
_SERVICE = re.compile(r"^[a-z][a-z0-9_]*$")


class Gone(Enum):
    """Zero-byte payload: the device dropped off D-Bus."""

    EMPTY = "empty"


@dataclass(frozen=True, slots=True)
class Garbage:
    """A payload or topic we refuse; `kind` names the problem for counting."""

    kind: str  # oversized | non_json | no_value | wrong_type | nan | unknown_topic


Decoded = float | int | Invalid | Gone | Garbage


class _NonFinite(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise _NonFinite(name)


def _parse(payload: bytes) -> object:
    try:
        return json.loads(payload.decode("utf-8"), parse_constant=_refuse_constant)
    except _NonFinite:
        return Garbage("nan")
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Garbage("non_json")


def _check_value(value: object) -> Decoded:
    if value is None:
        return Invalid.NULL
    if isinstance(value, bool):  # a D-Bus boolean: dbus-flashmq writes JSON true/false (src/vevariant.cpp)
        return int(value)
    if not isinstance(value, int | float):
        return Garbage("wrong_type")
    if isinstance(value, float) and not math.isfinite(value):
        return Garbage("nan")  # e.g. 1e999
    return value


def _value_of(payload: bytes) -> tuple[object, Gone | Garbage | None]:
    """The payload's "value" (size checked before any parsing), or why there is none: (None, reason)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None, Garbage("oversized")
    if not payload:
        return None, Gone.EMPTY
    data = _parse(payload)
    if isinstance(data, Garbage):
        return None, data
    if not isinstance(data, dict) or "value" not in data:
        return None, Garbage("no_value")
    return data["value"], None


def decode_payload(payload: bytes) -> Decoded:
    """Decode a Venus value payload (size checked before any parsing)."""
    value, reason = _value_of(payload)
    return reason if reason is not None else _check_value(value)


TailDecoded = float | str | Invalid | Gone | Garbage


def decode_tail_payload(payload: bytes) -> TailDecoded:
    """Decode a long-tail payload: numbers (as float; booleans as 0/1), text, null, or lists and objects as
    compact JSON text (a value only: the keys beside "value", such as min/max of settings, are not kept)."""
    value, reason = _value_of(payload)
    return reason if reason is not None else _tail_value(value)


def _tail_value(value: object) -> float | str | Invalid | Garbage:
    if value is None:
        return Invalid.NULL
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        number = float(value)
        return number if math.isfinite(number) else Garbage("nan")
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def decode_json_object(payload: bytes) -> dict[str, object] | None:
    """A small JSON object (Serial, full_publish_completed, heartbeat), or None if it is not one."""
    if not payload or len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        data = json.loads(payload.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def portal_from_serial(topic: str, payload: bytes) -> str | None:
    """The portal id from a retained `N/<id>/system/0/Serial` message, if well-formed."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "N" or parts[2:] != ["system", "0", "Serial"]:
        return None
    portal = parts[1]
    if not _SEGMENT.match(portal) or decode_json_object(payload) is None:
        return None
    return portal


def full_keepalive(token: str) -> bytes:
    """A keepalive that asks for a full republish ended by an echo of `token`."""
    return json.dumps({"keepalive-options": [{"full-publish-completed-echo": token}]}, separators=(",", ":")).encode()


def echo_of(payload: bytes) -> str | None:
    """The echo token carried by `full_publish_completed` (None when absent: firmware before 3.50)."""
    data = decode_json_object(payload)
    echo = data.get("full-publish-completed-echo") if data else None
    return echo if isinstance(echo, str) else None


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed N/ topic: `kind` is value (a configured role's), tail (any other service/instance),
    heartbeat, full_publish_completed, keepalive or unknown."""

    kind: str
    role: Role | None = None
    path: str = ""
    service: str = ""
    instance: int = 0


@dataclass(frozen=True, slots=True)
class TopicMap:
    """Which N/ topics belong to which role, for one portal id."""

    portal: str
    roles: dict[tuple[str, int], Role]
    everything: bool = False  # the long tail: subscribe to every N/<portal>/ topic

    @classmethod
    def from_settings(cls, portal: str, gx: GxSettings, everything: bool = False) -> TopicMap:
        """Roles from [gx]: system/0, settings/0, battery/<shunt_instance>, battery/<bms_instance>."""
        roles: dict[tuple[str, int], Role] = {("system", 0): "system", ("settings", 0): "settings"}
        roles.setdefault(("battery", gx.shunt_instance), "shunt")
        roles.setdefault(("battery", gx.bms_instance), "bms")
        return cls(portal, roles, everything)

    def subscriptions(self) -> list[str]:
        """The topic filters of the configured roles plus heartbeat and full_publish_completed; with the long
        tail one filter for everything (overlapping filters could deliver a message twice)."""
        base = f"N/{self.portal}"
        if self.everything:
            return [f"{base}/#"]
        subs = [f"{base}/{service}/{instance}/#" for service, instance in self.roles]
        subs += [f"{base}/{role}/+/#" for role in MULTI_ROLES]
        return [*subs, f"{base}/heartbeat", f"{base}/full_publish_completed", f"{base}/keepalive"]

    def parse(self, topic: str) -> Topic:
        """Classify an incoming topic."""
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != "N" or parts[1] != self.portal:
            return Topic("unknown")
        if len(parts) == 3 and parts[2] in ("heartbeat", "full_publish_completed", "keepalive"):
            return Topic(parts[2])
        if len(parts) < 5 or not parts[3].isdigit() or not all(parts[4:]):
            return Topic("unknown")
        service, instance, path = parts[2], int(parts[3]), "/" + "/".join(parts[4:])
        role = self.roles.get((service, instance))
        if role is None and service in MULTI_ROLES:
            role = service  # a MULTI_ROLES name is its service's name
        if role is not None:
            return Topic("value", role, path, service, instance)
        if self.everything and _SERVICE.match(service):
            return Topic("tail", None, path, service, instance)
        return Topic("unknown")


class PublishRefused(FatalError):
    """Something tried to publish outside R/<portal>/keepalive and read requests."""


def check_publish(portal: str, topic: str, payload: bytes) -> None:
    """Allow only `R/<portal>/keepalive` (keepalive options) and empty read requests; raise otherwise."""
    parts = topic.split("/")
    if not portal or not _SEGMENT.match(portal) or len(parts) < 3 or parts[0] != "R" or parts[1] != portal:
        raise PublishRefused(f"refusing to publish to {topic!r}: only R/{portal}/... is allowed")
    if parts[2:] == ["keepalive"]:
        _check_keepalive_payload(payload)
        return
    if len(parts) < 5 or not _SERVICE.match(parts[2]) or not parts[3].isdigit():
        raise PublishRefused(f"refusing to publish to {topic!r}: not a read request R/<portal>/<svc>/<inst>/<path>")
    if not all(_SEGMENT.match(p) for p in parts[4:]):
        raise PublishRefused(f"refusing to publish to {topic!r}: bad path segment")
    if payload:
        raise PublishRefused(f"refusing to publish to {topic!r}: a read request carries no payload")


def _check_keepalive_payload(payload: bytes) -> None:
    if not payload:
        return
    data = decode_json_object(payload) if len(payload) <= MAX_KEEPALIVE_BYTES else None
    if data is None or set(data) != {"keepalive-options"} or not isinstance(data["keepalive-options"], list):
        raise PublishRefused('refusing keepalive payload: only {"keepalive-options": [...]} is allowed')
