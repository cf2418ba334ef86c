"""The 1 Hz grid: a last-value cache fed by the sources, sampled on whole UTC seconds (pure logic + a lock).

Every second `snapshot()` turns the cache into one row per device (`battery`, tag device=shunt|bms), one
row per cell (`cell`, tag cell=<n>, plus battery=<b> inside a multi-battery BMS) and one `system` row.
A value goes into a row only while it is fresh:
its age (now - the last time its source confirmed it, by a message or a later `Confirm`) is within the
TTL of its class. MQTT is preferred (full precision), Modbus is the fallback. A fresh MQTT null means the
GX itself says "invalid", so it also suppresses the Modbus reading (which would be a 0). Values that are
stale, invalid or gone are never held silently: they are left out and counted in `stale_fields`, except a
fresh null of a field whose null is a state, not a fault (rule null_ok in fields.csv): left out, not counted.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from bess_common.sample import FieldValue, Sample
from bess_common.schema import (
    AGE_FIELD,
    DEVICE_TAG,
    INSTANCE_TAGGED,
    STALE_FIELD,
    SYSTEM,
    derive_system_totals,
    row_tags,
)
from collector.gx.tables import FieldSpec, field_for
from collector.observation import Confirm, DeviceGone, Event, Invalid, Observation, Role, SourceName

SOURCE_PRIORITY: tuple[SourceName, ...] = ("mqtt", "modbus")

# (measurement, device tag or "", instance (-1: no instance tag), battery number or 0, cell number or 0)
RowKey = tuple[str, str, int, int, int]
HeldKey = tuple[Role, int, str]  # (role, instance, D-Bus path)


class _Gone(Enum):
    GONE = "gone"


@dataclass(slots=True)
class _Held:
    value: float | int | str | Invalid | _Gone
    confirmed_mono_s: float


@dataclass(frozen=True, slots=True)
class _Pick:
    """What one field of one row resolves to at one instant."""

    value: float | int | None  # None: nothing writable
    age_s: float = 0.0
    stale: bool = False


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _convert(spec: FieldSpec, value: float | int) -> FieldValue:
    return float(value) if spec.kind == "float" else round(value)


class Grid:
    """Sample-and-hold cache of every configured value, with ages and TTLs; thread-safe."""

    def __init__(self, site: str, ttl_s: dict[str, float]) -> None:
        self._site = site
        self._ttl_s = dict(ttl_s)
        self._lock = threading.Lock()
        self._held: dict[HeldKey, dict[SourceName, _Held]] = {}
        self._specs: dict[tuple[str, str], tuple[FieldSpec, int, int] | None] = {}

    def _spec(self, role: str, path: str) -> tuple[FieldSpec, int, int] | None:
        key = (role, path)
        if key not in self._specs:
            self._specs[key] = field_for(role, path)
        return self._specs[key]

    def apply(self, events: Iterable[Event]) -> None:
        """Take a batch of source events (the sources' sink calls this)."""
        with self._lock:
            for event in events:
                if isinstance(event, Observation):
                    if self._spec(event.role, event.path) is not None:
                        per_source = self._held.setdefault((event.role, event.instance, event.path), {})
                        per_source[event.source] = _Held(event.value, event.mono_s)
                elif isinstance(event, DeviceGone):
                    self._gone(event)
                elif isinstance(event, Confirm):
                    self._confirm(event)

    def _gone(self, event: DeviceGone) -> None:
        for (role, instance, _path), per_source in self._held.items():
            if role == event.role and event.instance in (None, instance) and event.source in per_source:
                per_source[event.source] = _Held(_Gone.GONE, event.mono_s)

    def _confirm(self, event: Confirm) -> None:
        for (role, _instance, _path), per_source in self._held.items():
            held = per_source.get(event.source)
            if role in event.roles and held is not None and held.value is not _Gone.GONE:
                held.confirmed_mono_s = max(held.confirmed_mono_s, event.mono_s)

    def cell_count(self) -> int:
        """How many distinct cells currently have a value (any source, not gone)."""
        with self._lock:
            cells = set()
            for (role, _instance, path), per_source in self._held.items():
                found = self._spec(role, path)
                if found and found[2] and any(h.value is not _Gone.GONE for h in per_source.values()):
                    cells.add(found[1:])
            return len(cells)

    def snapshot(self, ts_ns: int, now_mono_s: float) -> list[Sample]:
        """The rows for grid instant `ts_ns` (UTC ns), ages measured against `now_mono_s`."""
        with self._lock:
            rows = self._candidates()
            out = []
            for row_key in sorted(rows):
                sample = self._row(row_key, rows[row_key], ts_ns, now_mono_s)
                if sample is not None:
                    out.append(sample)
            return out

    def _candidates(self) -> dict[RowKey, dict[str, tuple[FieldSpec, list[tuple[SourceName, _Held]]]]]:
        rows: dict[RowKey, dict[str, tuple[FieldSpec, list[tuple[SourceName, _Held]]]]] = {}
        for (role, instance, path), per_source in self._held.items():
            found = self._spec(role, path)
            if found is None:
                continue
            spec, battery, cell = found
            tagged = instance if role in INSTANCE_TAGGED else -1
            row_key = (spec.measurement, DEVICE_TAG.get(role, ""), tagged, battery, cell)
            _spec, cands = rows.setdefault(row_key, {}).setdefault(spec.field, (spec, []))
            cands.extend(per_source.items())
        return rows

    def _pick(self, spec: FieldSpec, cands: list[tuple[SourceName, _Held]], now_mono_s: float) -> _Pick:
        ttl_s = self._ttl_s[spec.ttl]
        for source in SOURCE_PRIORITY:
            mine = [h for s, h in cands if s == source and h.value is not _Gone.GONE]
            if not mine:
                continue
            best = max(mine, key=lambda h: h.confirmed_mono_s)
            age_s = max(0.0, now_mono_s - best.confirmed_mono_s)
            if age_s > ttl_s:
                continue
            if _numeric(best.value):
                return _Pick(best.value, age_s)  # type: ignore[arg-type]
            # a fresh "invalid" from the preferred source wins; counted unless null is a state there (null_ok)
            return _Pick(None, stale=not spec.null_ok)
        return _Pick(None, stale=True)

    def _row(
        self,
        row_key: RowKey,
        fields: dict[str, tuple[FieldSpec, list[tuple[SourceName, _Held]]]],
        ts_ns: int,
        now_mono_s: float,
    ) -> Sample | None:
        measurement, device, instance, battery, cell = row_key
        values: dict[str, FieldValue] = {}
        ages: list[float] = []
        stale = 0
        for name, (spec, cands) in fields.items():
            pick = self._pick(spec, cands, now_mono_s)
            if pick.value is not None:
                values[name] = _convert(spec, pick.value)
                ages.append(pick.age_s)
            elif pick.stale:
                stale += 1
        if measurement == SYSTEM and values:
            values = derive_system_totals(values)
        if ages:
            values[AGE_FIELD] = max(ages)
        values[STALE_FIELD] = stale
        return Sample(measurement, row_tags(self._site, device, instance, battery, cell), values, ts_ns)
