"""Load the reviewed GX tables (registers.csv, fields.csv) into typed, validated records.

The tables are data: knowledge of the GX lives there, not in code paths. Loading validates them (types,
overlaps, unknown roles) so a bad edit fails at start-up and in the unit tests, not in the field.
"""

from __future__ import annotations

import csv
import itertools
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Literal

RegType = Literal["int16", "uint16", "int32", "uint32", "uint64", "string", "reserved"]
ReadWhen = Literal["always", "in_block"]
READ_WHEN: tuple[ReadWhen, ...] = ("always", "in_block")
Kind = Literal["float", "int", "bool"]
ROLE_SERVICE = {
    "system": "system",
    "settings": "settings",
    "shunt": "battery",
    "bms": "battery",
    **{
        role: role for role in ("vebus", "multi", "acsystem", "solarcharger", "grid", "acload", "pvinverter")
    },  # any instance
}
TTL_CLASSES = ("shunt", "cell", "system")
_WORDS = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "uint64": 4, "reserved": 1}


@dataclass(frozen=True, slots=True)
class Register:
    """One entry of the Modbus map."""

    service: str  # system | settings | battery
    address: int
    type: RegType
    words: int
    scale: float  # register = round(value * scale); negative flips the sign
    unit: str
    dbus_path: str  # '' for reserved; '#suffix' marks a second register for the same D-Bus value
    writable: bool
    fallback_for: int | None = None  # read this one when the register at that address is not served
    read: ReadWhen = "always"  # in_block: read only inside a block read anyway (MQTT gives the same value)

    @property
    def path(self) -> str:
        """The D-Bus path without a '#variant' suffix."""
        return self.dbus_path.split("#", 1)[0]

    @property
    def end(self) -> int:
        """One past the last address this register covers."""
        return self.address + self.words


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One stored value: which role/path feeds which measurement and field."""

    role: str  # system | settings | shunt | bms
    path: str  # may hold '{n}' (cell number) and '{b}' (battery number inside a multi-battery BMS)
    measurement: str
    field: str
    kind: Kind
    ttl: str
    null_ok: bool = False  # a fresh GX null is a state (rule null_ok): left out, not counted in stale_fields

    @property
    def per_cell(self) -> bool:
        return "{n}" in self.path

    def match(self, path: str) -> tuple[int, int] | None:
        """(battery, cell) numbers if `path` matches (0 where the spec has no such placeholder), else None."""
        if not self.per_cell and "{b}" not in self.path:
            return (0, 0) if path == self.path else None
        found = _pattern(self.path).match(path)
        if found is None:
            return None
        return int(found.group("b") or 0), int(found.group("n") or 0)


PlanKind = Literal["dess", "ess_charge", "settings"]
PLAN_KINDS: tuple[PlanKind, ...] = ("dess", "ess_charge", "settings")
PlanType = Literal["int", "float", "str"]


@dataclass(frozen=True, slots=True)
class PlanSpec:
    """One value of the GX's plan (plan.csv): which settings path feeds which gx_plan point and field."""

    role: str
    path: str  # '{n}' = the slot number (kinds dess and ess_charge)
    kind: PlanKind
    field: str
    type: PlanType
    when_positive: bool  # this value replaces the other row of the same field when it is > 0

    def slot(self, path: str) -> str | None:
        """The slot tag ("0", "1", ...; "all" for kind settings) if `path` matches, else None."""
        if "{n}" not in self.path:
            return "all" if path == self.path else None
        found = _pattern(self.path).match(path)
        return None if found is None else str(int(found.group("n")))


@dataclass(frozen=True, slots=True)
class MovingPath:
    """One fast-moving value of a role (moving.csv): it changes whenever the device's service is updating."""

    role: str
    path: str  # may hold '{n}' / '{b}' as in fields.csv

    def match(self, path: str) -> bool:
        return _pattern(self.path).match(path) is not None


@cache
def _pattern(spec_path: str) -> re.Pattern[str]:
    escaped = re.escape(spec_path).replace(r"\{n\}", r"(?P<n>\d+)").replace(r"\{b\}", r"(?P<b>\d+)")
    if "(?P<b>" not in escaped:
        escaped += "(?P<b>)"
    if "(?P<n>" not in escaped:
        escaped += "(?P<n>)"
    return re.compile("^" + escaped + "$")


def _rows(name: str) -> list[dict[str, str]]:
    """The rows of one of the package's CSV tables ('#' lines are comments)."""
    text = resources.files("collector.gx").joinpath(name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(lines))


def _parse_type(raw: str) -> tuple[RegType, int]:
    if raw.startswith("string"):
        return "string", int(raw[len("string") :])
    if raw not in _WORDS:
        raise ValueError(f"unknown register type {raw!r}")
    return raw, _WORDS[raw]  # type: ignore[return-value]


def parse_register(row: dict[str, str]) -> Register:
    """One row of registers.csv (or a table in its format) as a Register."""
    reg_type, words = _parse_type(row["type"])
    fallback = (row.get("fallback_for") or "").strip()
    read = (row.get("read") or "").strip() or "always"
    if read not in READ_WHEN:
        raise ValueError(f"registers.csv: {row['service']} {row['address']}: unknown read {read!r}")
    return Register(
        row["service"],
        int(row["address"]),
        reg_type,
        words,
        float(row["scale"]),
        row["unit"],
        row["dbus_path"],
        row["access"] == "w",
        int(fallback) if fallback else None,
        read,
    )


def _check_fallbacks(regs: list[Register]) -> None:
    by_address = {(r.service, r.address): r for r in regs}
    for reg in regs:
        if reg.fallback_for is None:
            continue
        primary = by_address.get((reg.service, reg.fallback_for))
        if primary is None or primary.path != reg.path or "#" in primary.dbus_path:
            raise ValueError(
                f"registers.csv: {reg.service} {reg.address} is a fallback for {reg.fallback_for}, "
                "which must be the primary register of the same D-Bus path"
            )


@cache
def registers() -> tuple[Register, ...]:
    """The Modbus register map, sorted by (service, address); raises ValueError on overlaps."""
    out = sorted((parse_register(row) for row in _rows("registers.csv")), key=lambda r: (r.service, r.address))
    for prev, cur in itertools.pairwise(out):
        if prev.service == cur.service and cur.address < prev.end:
            raise ValueError(f"registers.csv: {cur.service} {cur.address} overlaps {prev.address}")
    _check_fallbacks(out)
    return tuple(out)


@cache
def fields() -> tuple[FieldSpec, ...]:
    """The field map; raises ValueError on unknown roles, kinds, TTL classes or rules."""
    out = []
    for row in _rows("fields.csv"):
        rule = (row.get("rule") or "").strip()
        if rule not in ("", "null_ok"):
            raise ValueError(f"fields.csv: unknown rule {rule!r}")
        kind: Kind = row["kind"]  # type: ignore[assignment]  # checked below
        spec = FieldSpec(row["role"], row["path"], row["measurement"], row["field"], kind, row["ttl"], bool(rule))
        if spec.role not in ROLE_SERVICE:
            raise ValueError(f"fields.csv: unknown role {spec.role!r}")
        if spec.kind not in ("float", "int", "bool"):
            raise ValueError(f"fields.csv: unknown kind {spec.kind!r}")
        if spec.ttl not in TTL_CLASSES:
            raise ValueError(f"fields.csv: unknown ttl class {spec.ttl!r}")
        out.append(spec)
    return tuple(out)


def registers_for(service: str) -> tuple[Register, ...]:
    """The registers of one service type (system, settings, battery)."""
    return tuple(r for r in registers() if r.service == service)


def register_by_path(service: str) -> dict[str, Register]:
    """First register for each D-Bus path of a service (the '#variant' copies are skipped)."""
    out: dict[str, Register] = {}
    for reg in registers_for(service):
        if reg.dbus_path and "#" not in reg.dbus_path:
            out.setdefault(reg.dbus_path, reg)
    return out


def field_for(role: str, path: str) -> tuple[FieldSpec, int, int] | None:
    """The spec storing (role, path) with its battery and cell numbers (0 when not per battery / per cell), or
    None if not stored."""
    for spec in fields():
        if spec.role == role:
            found = spec.match(path)
            if found is not None:
                return spec, found[0], found[1]
    return None


@cache
def plan_specs() -> tuple[PlanSpec, ...]:
    """The plan map (plan.csv); raises ValueError on an unknown role, kind or type."""
    out = []
    for row in _rows("plan.csv"):
        rule = (row.get("rule") or "").strip()
        kind, kind_type = row["kind"], row["type"]
        spec = PlanSpec(row["role"], row["path"], kind, row["field"], kind_type, rule == "when_positive")  # type: ignore[arg-type]
        if spec.role not in ROLE_SERVICE:
            raise ValueError(f"plan.csv: unknown role {spec.role!r}")
        if spec.kind not in PLAN_KINDS:
            raise ValueError(f"plan.csv: unknown kind {spec.kind!r}")
        if spec.type not in ("int", "float", "str"):
            raise ValueError(f"plan.csv: unknown type {spec.type!r}")
        if rule not in ("", "when_positive"):
            raise ValueError(f"plan.csv: unknown rule {rule!r}")
        if ("{n}" in spec.path) == (spec.kind == "settings"):
            raise ValueError(f"plan.csv: {spec.path}: slots ({{n}}) are for kinds dess and ess_charge only")
        out.append(spec)
    return tuple(out)


@lru_cache(maxsize=8192)  # asked for every value the sources deliver; bounded: a GX's paths are many
def plan_field_for(role: str, path: str) -> tuple[PlanSpec, str] | None:
    """The plan spec storing (role, path) with its slot tag, or None if it is not part of the plan."""
    for spec in plan_specs():
        if spec.role == role:
            slot = spec.slot(path)
            if slot is not None:
                return spec, slot
    return None


def stored(role: str, path: str) -> bool:
    """Whether a table stores (role, path): a 1 Hz field (fields.csv) or part of the plan (plan.csv)."""
    return field_for(role, path) is not None or plan_field_for(role, path) is not None


@cache
def moving() -> tuple[MovingPath, ...]:
    """The fast-moving paths per role (moving.csv); raises ValueError on unknown roles."""
    out = []
    for row in _rows("moving.csv"):
        if row["role"] not in ROLE_SERVICE:
            raise ValueError(f"moving.csv: unknown role {row['role']!r}")
        out.append(MovingPath(row["role"], row["path"]))
    return tuple(out)


@cache
def unit_ids() -> dict[int, int]:
    """Device instance -> Modbus unit id, from unitids.csv (the GX's fixed assignments)."""
    out: dict[int, int] = {}
    for row in _rows("unitids.csv"):
        out.setdefault(int(row["instance"]), int(row["unit"]))
    return out


def unit_for_instance(instance: int) -> int | None:
    """The Modbus unit id of a device instance on a GX: unitids.csv, else the same number (1..247), else None."""
    found = unit_ids().get(instance)
    if found is not None:
        return found
    return instance if 0 < instance <= 247 else None
