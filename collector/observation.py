"""What sources hand to the grid: observations of GX D-Bus paths, and liveness events.

Sources (Modbus poller, MQTT client) never see the grid's internals, the buffer or InfluxDB: they call a
`ObservationSink` with small typed records. Times are `time.monotonic()` seconds (for ages) and the
record is immutable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Literal, Protocol

from bess_common.sample import Sample

Role = Literal[
    "system", "settings", "shunt", "bms", "vebus", "multi", "acsystem", "solarcharger", "grid", "acload", "pvinverter"
]
# Roles with any number of instances, found on the GX (the service name is the role): rows carry `instance`.
MULTI_ROLES: tuple[Role, ...] = ("vebus", "multi", "acsystem", "solarcharger", "grid", "acload", "pvinverter")
SourceName = Literal["mqtt", "modbus"]


class Invalid(Enum):
    """Markers for values that are not numbers."""

    NULL = "null"  # the GX says the value is invalid ({"value": null})


@dataclass(frozen=True, slots=True)
class Observation:
    """One value of one D-Bus path as seen by one source at one moment."""

    role: Role
    path: str  # e.g. "/Dc/0/Voltage" or "/Voltages/Cell3"
    value: float | int | str | Invalid
    source: SourceName
    mono_s: float
    instance: int = 0  # the device instance, for MULTI_ROLES (0 for the single-instance roles)


@dataclass(frozen=True, slots=True)
class DeviceGone:
    """A device vanished (MQTT empty payloads, Modbus exception 0x0A): drop its values at once."""

    role: Role
    source: SourceName
    mono_s: float
    instance: int | None = None  # one instance of a MULTI_ROLES device; None: every instance of the role


@dataclass(frozen=True, slots=True)
class Confirm:
    """Liveness proof: every value this source has delivered is still current as of `mono_s`.

    MQTT sends it on each heartbeat while the keepalive is alive and a full publish has completed since
    the last (re)subscribe (Venus publishes every change, so silence means unchanged). Roles limits it.
    """

    source: SourceName
    mono_s: float
    roles: tuple[Role, ...] = ("system", "settings", "shunt", "bms")


@dataclass(frozen=True, slots=True)
class TopicValue:
    """A GX value no table maps (the long tail): any service, instance and path; numbers, text or null."""

    service: str  # e.g. "vebus"
    instance: int
    path: str  # e.g. "/Ac/Out/L1/P"
    value: float | str | Invalid  # lists and objects arrive as compact JSON text
    republish: int  # the source's full-republish cycle it arrived in (a new cycle stores every topic again)
    mono_s: float
    wall_ns: int  # arrival, UTC ns: the point's timestamp


@dataclass(frozen=True, slots=True)
class Rows:
    """Complete rows a source built itself, not GX values (a PV forecast issue): buffered as they are, with the
    next grid second's rows."""

    source: str
    samples: tuple[Sample, ...]


Event = Observation | DeviceGone | Confirm | TopicValue | Rows
ObservationSink = Callable[[list[Event]], None]

SourceState = Literal["starting", "connected", "stalled", "disconnected", "absent"]


class Source(Protocol):
    """A GX source running on its own thread(s)."""

    name: str

    def start(self, sink: ObservationSink) -> None:
        """Connect and start delivering events to `sink` (returns at once)."""

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop delivering and disconnect."""

    def state(self) -> dict[str, SourceState]:
        """Connection state per device/role, for health metrics and logs."""

    def loop_age_s(self) -> float:
        """Seconds since the source's loop last went round (the systemd watchdog checks it)."""
