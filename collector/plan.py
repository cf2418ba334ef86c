"""The GX's plan: Dynamic ESS slots, ESS scheduled charge windows and the settings they run under, stored as
a SNAPSHOT in `gx_plan` each time any of it changes (pure logic plus a lock).

What is part of the plan is data (collector/gx/plan.csv). The sources hand plan paths over as ordinary
Observations; `PlanTracker.observe` keeps the last value of each (MQTT preferred: a value MQTT gave is never
replaced by a Modbus reading, which is rounded to its register); a change marks the plan dirty. The agent's
tick calls `drain`: once the plan has been still for `settle_s` (the GX, or VRM writing 48 slots, changes
many paths in one burst) it returns one snapshot, every point at that tick's timestamp, so a snapshot never
holds a value seen after its own timestamp. `snapshot_samples` is the one place a snapshot is built: the
simulator's backfill calls it too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from bess_common.sample import FieldValue, Sample
from bess_common.schema import GX_PLAN
from collector.gx.tables import PlanSpec, plan_field_for
from collector.observation import Event, Invalid, Observation, SourceName

PlanValue = float | int | str | Invalid | None


def _convert(spec: PlanSpec, value: PlanValue) -> FieldValue | None:
    """The value as gx_plan stores it (int, float or str per plan.csv); None when invalid or of the wrong type
    (the sources set a wrong-typed value aside before it gets here: counted as garbage_wrong_type, logged)."""
    if value is None or isinstance(value, Invalid):
        return None
    if spec.type == "str":
        return value if isinstance(value, str) else None
    if isinstance(value, str | bool):
        return None
    return float(value) if spec.type == "float" else round(value)


def snapshot_samples(values: Mapping[tuple[str, str], PlanValue], ts_ns: int, site: str) -> list[Sample]:
    """The gx_plan points of one snapshot: one per (kind, slot) seen in `values` ((role, path) -> value), all at
    `ts_ns`, sorted by kind and slot number. A slot whose values are all invalid still shows (with no fields it
    cannot be written, so it is left out; its kind's other slots carry on)."""
    points: dict[tuple[str, str], dict[str, FieldValue]] = {}
    overrides: dict[tuple[str, str], dict[str, FieldValue]] = {}
    for (role, path), value in values.items():
        found = plan_field_for(role, path)
        if found is None:
            continue
        spec, slot = found
        fields = points.setdefault((spec.kind, slot), {})
        converted = _convert(spec, value)
        if converted is None:
            continue
        if spec.when_positive:
            if isinstance(converted, int | float) and converted > 0:
                overrides.setdefault((spec.kind, slot), {})[spec.field] = converted
        else:
            fields[spec.field] = converted
    out = []
    for kind, slot in sorted(points, key=lambda k: (k[0], int(k[1]) if k[1].isdigit() else -1)):
        fields = {**points[(kind, slot)], **overrides.get((kind, slot), {})}
        if fields:
            out.append(Sample(GX_PLAN, {"site": site, "kind": kind, "slot": slot}, fields, ts_ns))
    return out


class PlanTracker:
    """The last value of every plan path, and whether a snapshot is due; thread-safe."""

    def __init__(self, site: str, settle_s: float) -> None:
        self._site = site
        self._settle_s = settle_s
        self._lock = threading.Lock()
        self._by_source: dict[tuple[str, str], dict[SourceName, PlanValue]] = {}
        self._values: dict[tuple[str, str], PlanValue] = {}
        self._changed_mono_s: float | None = None  # the last change not yet in a snapshot
        self.snapshots = 0

    def observe(self, events: Iterable[Event]) -> None:
        """Take the plan paths among a batch of source events (others are ignored)."""
        with self._lock:
            for event in events:
                if isinstance(event, Observation) and plan_field_for(event.role, event.path) is not None:
                    self._take(event)

    def _take(self, event: Observation) -> None:
        key = (event.role, event.path)
        held = self._by_source.setdefault(key, {})
        held[event.source] = event.value
        value = held["mqtt"] if "mqtt" in held else held.get("modbus")
        if key not in self._values or self._values[key] != value:
            self._values[key] = value
            self._changed_mono_s = event.mono_s

    def drain(self, ts_ns: int, mono_s: float) -> list[Sample]:
        """The snapshot, at `ts_ns`, when the plan changed and has been still for settle_s since; else []."""
        with self._lock:
            changed = self._changed_mono_s
            if changed is None or mono_s - changed < self._settle_s:
                return []
            self._changed_mono_s = None
            self.snapshots += 1
            return snapshot_samples(self._values, ts_ns, self._site)

    def retry(self) -> None:
        """The last snapshot was not buffered: write the plan again at the next drain."""
        with self._lock:
            if self._changed_mono_s is None:
                self._changed_mono_s = float("-inf")
