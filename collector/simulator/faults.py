"""Fault knobs for tests: drop a device, ignore keepalives, hang one service, freeze the whole GX, Modbus
exceptions, garbage on MQTT.

The knobs live on the in-process simulator (`GxSimulator.faults`); each is a method and idempotent. The
Modbus server and the MQTT publisher read the state on every request/tick; MQTT side effects (empty
payloads for a dropped device, garbage messages) go through the publisher hooks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal, Protocol

from collector.simulator.columns import Key, Value
from collector.simulator.truth import MODBUS_ONLY

Role = Literal["system", "settings", "shunt", "bms"]
Clamp = Literal["max-1", "max"]  # dbus_modbustcp's overflow clamp: MAX-1 since v1.0.96, MAX v1.0.85-v1.0.95
CLAMPS: tuple[Clamp, ...] = ("max-1", "max")
GarbageKind = Literal["non_json", "wrong_type", "nan", "oversized", "unknown_topic"]
GARBAGE_KINDS: tuple[GarbageKind, ...] = ("non_json", "wrong_type", "nan", "oversized", "unknown_topic")
ROLES: tuple[Role, ...] = ("system", "settings", "shunt", "bms")


class MqttHooks(Protocol):
    """What the fault knobs need from the MQTT publisher."""

    def device_dropped(self, role: str) -> None:
        """Publish a zero-byte payload on every topic of the device."""

    def device_restored(self, role: str) -> None:
        """Publish the device's topics again."""

    def send_garbage(self, kind: str) -> None:
        """Publish one kind of malformed message."""


class Faults:
    """The fault state of one simulated GX, plus the knobs that change it."""

    def __init__(self, snapshot: Callable[[], dict[Key, Value]]) -> None:
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self._dropped: set[str] = set()
        self._ignore_keepalives = False
        self._frozen: dict[Key, Value] | None = None
        self._modbus_exceptions: dict[int, int] = {}
        self._out_of_range: Clamp | None = None
        self._pinned: dict[Key, Value] = {}
        self._hung: dict[str, dict[Key, Value]] = {}  # role -> its values when its service hung
        self.mqtt: MqttHooks | None = None

    # --- knobs ----------------------------------------------------------------------------------------
    def drop_device(self, role: str) -> None:
        """The device leaves D-Bus: MQTT empty payloads on its topics, Modbus 0x0A for its registers."""
        _check_role(role)
        with self._lock:
            if role in self._dropped:
                return
            self._dropped.add(role)
        if self.mqtt is not None:
            self.mqtt.device_dropped(role)

    def restore_device(self, role: str) -> None:
        """The device comes back: its topics are published again, Modbus serves it again."""
        _check_role(role)
        with self._lock:
            if role not in self._dropped:
                return
            self._dropped.discard(role)
        if self.mqtt is not None:
            self.mqtt.device_restored(role)

    def ignore_keepalives(self, on: bool = True) -> None:
        """Keepalives are recorded but neither refresh the timer nor trigger a republish."""
        with self._lock:
            self._ignore_keepalives = on

    def hang_service(self, role: str, on: bool = True) -> None:
        """One D-Bus service hangs (its driver stops updating): its values stop changing on Modbus and MQTT
        alike, while everything the GX computes itself goes on. The MQTT heartbeat is a timer of the
        dbus-flashmq plugin and a full republish sends the plugin's cached values (victronenergy/dbus-flashmq
        @bb470b7, src/state.cpp `State::heartbeat`, `State::publish_all`); register 830 is the Modbus
        server's own clock at request time (victronenergy/dbus_modbustcp @24c50db, mappings.cpp
        `TimeOperation`). Neither notices the hang, and the other services keep changing, except the system
        service's /Dc/Battery/* copies of the battery monitor (the shunt here), which dbus-systemcalc-py
        copies from that service (victronenergy/dbus-systemcalc-py @9730db0, dbus_systemcalc.py)."""
        _check_role(role)
        if not on:
            with self._lock:
                self._hung.pop(role, None)
            return
        with self._lock:
            if role in self._hung:
                return
        held = {k: v for k, v in self._snapshot().items() if _held_by(role, k) and k not in MODBUS_ONLY}
        with self._lock:
            self._hung.setdefault(role, held)

    def freeze(self, on: bool = True) -> None:
        """The whole GX hangs (locked up, overloaded): no MQTT publishes, heartbeats or answers to keepalives
        and read requests, and Modbus requests go unanswered (clients time out)."""
        if not on:
            with self._lock:
                self._frozen = None
            return
        if self.frozen_values() is not None:
            return
        snapshot = self._snapshot()
        with self._lock:
            if self._frozen is None:
                self._frozen = snapshot

    def pin(self, role: str, path: str, value: Value) -> None:
        """Hold one D-Bus value at `value` on Modbus and MQTT alike (e.g. a grid import beyond 32.7 kW,
        more than this small site ever draws); `unpin` gives it back to the physics."""
        _check_role(role)
        with self._lock:
            self._pinned[(role, path)] = value

    def unpin(self, role: str, path: str) -> None:
        """Give a pinned value back to the physics."""
        with self._lock:
            self._pinned.pop((role, path), None)

    def modbus_exception(self, unit: int, code: int | None) -> None:
        """Answer every request to `unit` with exception `code` (None: back to normal)."""
        with self._lock:
            if code is None:
                self._modbus_exceptions.pop(unit, None)
            else:
                self._modbus_exceptions[unit] = int(code)

    def modbus_out_of_range(self, on: bool = True, clamp: Clamp = "max-1") -> None:
        """Every numeric register reads the top of its type, as dbus_modbustcp serves a value too large for
        it: MAX-1 (0xFFFE, 0x7FFE; v1.0.96 on) or, with clamp="max", MAX (0xFFFF, 0x7FFF; v1.0.85-v1.0.95)."""
        if clamp not in CLAMPS:
            raise ValueError(f"unknown clamp {clamp!r}; one of {', '.join(CLAMPS)}")
        with self._lock:
            self._out_of_range = clamp if on else None

    def send_garbage(self, kind: str) -> None:
        """Publish malformed MQTT: non_json, wrong_type, nan, oversized (>1 MiB) or unknown_topic."""
        if kind not in GARBAGE_KINDS:
            raise ValueError(f"unknown garbage kind {kind!r}; one of {', '.join(GARBAGE_KINDS)}")
        if self.mqtt is None:
            raise RuntimeError("send_garbage needs the MQTT publisher (mqtt_port is None)")
        self.mqtt.send_garbage(kind)

    # --- state, read by the servers -------------------------------------------------------------------
    def is_dropped(self, role: str) -> bool:
        """Whether the device is currently off D-Bus."""
        with self._lock:
            return role in self._dropped

    def dropped(self) -> frozenset[str]:
        """The roles currently off D-Bus."""
        with self._lock:
            return frozenset(self._dropped)

    def keepalives_ignored(self) -> bool:
        """Whether keepalives are ignored."""
        with self._lock:
            return self._ignore_keepalives

    def frozen_values(self) -> dict[Key, Value] | None:
        """The values D-Bus hung on, or None when not frozen."""
        with self._lock:
            return self._frozen

    def overlay(self) -> dict[Key, Value]:
        """The values that replace the physics' own (those of hung services, then pinned ones), empty when
        none."""
        with self._lock:
            out: dict[Key, Value] = {}
            for held in self._hung.values():
                out.update(held)
            out.update(self._pinned)
            return out

    def exception_for(self, unit: int) -> int | None:
        """The forced Modbus exception for a unit, if any."""
        with self._lock:
            return self._modbus_exceptions.get(unit)

    def out_of_range(self) -> Clamp | None:
        """The clamp every numeric register reads at, or None (normal values)."""
        with self._lock:
            return self._out_of_range


def _held_by(role: str, key: Key) -> bool:
    """Whether a hang of `role`'s service stops `key` changing (the system copies the shunt's values)."""
    return key[0] == role or (role == "shunt" and key[0] == "system" and key[1].startswith("/Dc/Battery/"))


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
