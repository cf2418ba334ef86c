"""Simulated history in exactly the rows the collector writes (for backfills and tests): the 1 Hz grid's rows
(`history_samples`) and the plan's snapshots (`plan_samples`).

Rows per second, in the grid's order: battery (device=bms), battery (device=shunt), cell 1..N
(device=bms), system. Field names and kinds come from collector/gx/fields.csv; system rows pass through
bess_common.schema.derive_system_totals; every row carries age_s = 0.0 and stale_fields = the number of its
mapped fields whose GX value is invalid (None), as the grid counts a fresh MQTT null (not those with rule
null_ok in fields.csv).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bess_common.sample import FieldValue, Sample
from bess_common.schema import AGE_FIELD, DEVICE_TAG, STALE_FIELD, SYSTEM, derive_system_totals, row_tags
from collector.gx.tables import FieldSpec, field_for
from collector.plan import snapshot_samples
from collector.simulator.bms import DEFAULT_BMS
from collector.simulator.columns import Column, Key
from collector.simulator.devices import DEVICES
from collector.simulator.physics import BessPhysics
from collector.simulator.plan_paths import settings_at
from collector.simulator.profiles import DAY_S
from collector.simulator.schedule import ISSUE_S
from collector.simulator.truth import DEFAULT_PORTAL_ID, Truth

NS = 1_000_000_000
CHUNK_ROWS = 900  # instants generated at once (x ~19 rows each)


@dataclass(frozen=True, slots=True)
class _RowPlan:
    measurement: str
    tags: dict[str, str]
    fields: tuple[tuple[str, FieldSpec, Key], ...]


def _row_plans(keys: list[Key], site: str) -> list[_RowPlan]:
    """Group the stored (role, path) keys into rows, sorted like the grid's snapshot."""
    rows: dict[tuple[str, str, int, int, int], list[tuple[str, FieldSpec, Key]]] = {}
    for key in keys:
        role, instance = DEVICES.get(key[0], (key[0], -1))
        found = field_for(role, key[1])
        if found is None:
            continue
        spec, battery, cell = found
        row_key = (spec.measurement, DEVICE_TAG.get(role, ""), instance, battery, cell)
        rows.setdefault(row_key, []).append((spec.field, spec, key))
    plans = []
    for (measurement, device, instance, battery, cell), fields in sorted(rows.items()):
        plans.append(_RowPlan(measurement, row_tags(site, device, instance, battery, cell), tuple(fields)))
    return plans


def _field_values(column: Column, spec: FieldSpec, idx: np.ndarray) -> list[FieldValue | None]:
    """The column at `idx` as the grid writes it: float or integer per the spec's kind, None = invalid."""
    if not isinstance(column, np.ndarray):
        value = _convert(spec, column)
        return [value] * len(idx)
    picked = column[idx]
    if picked.dtype.kind != "f":
        return [_convert(spec, v) for v in picked.tolist()]
    invalid = np.isnan(picked)
    values = picked.tolist() if spec.kind == "float" else np.rint(np.where(invalid, 0, picked)).astype(int).tolist()
    if invalid.any():
        return [None if bad else v for v, bad in zip(values, invalid.tolist(), strict=True)]
    return list(values)


def _convert(spec: FieldSpec, value: object) -> FieldValue | None:
    if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
        return None  # None (invalid) or a string path that is not stored as a number
    return float(value) if spec.kind == "float" else round(value)


def _day_rows(plan: _RowPlan, cols: dict[Key, Column], day: int, idx: np.ndarray, offset_s: int) -> list[Sample]:
    series = [(name, spec, _field_values(cols[key], spec, idx - offset_s)) for name, spec, key in plan.fields]
    base_ns = day * DAY_S * NS
    out = []
    for n, sec in enumerate(idx.tolist()):
        fields: dict[str, FieldValue] = {}
        stale = 0
        for name, spec, values in series:
            v = values[n]
            if v is None:  # the GX says invalid: counted unless null is a state there (null_ok), as in the grid
                if not spec.null_ok:
                    stale += 1
            else:
                fields[name] = v
        if plan.measurement == SYSTEM and fields:
            fields = derive_system_totals(fields)
        if fields:
            fields[AGE_FIELD] = 0.0
        fields[STALE_FIELD] = stale
        out.append(Sample(plan.measurement, dict(plan.tags), fields, base_ns + sec * NS))
    return out


def history_samples(
    physics: BessPhysics,
    start_ns: int,
    end_ns: int,
    step_s: int = 1,
    *,
    site: str = "shop",
    portal_id: str = DEFAULT_PORTAL_ID,
    bms: str = DEFAULT_BMS,
) -> Iterator[Sample]:
    """Rows for every whole UTC second in [start_ns, end_ns) that is a multiple of `step_s`, in time order."""
    if step_s < 1:
        raise ValueError("step_s must be >= 1")
    truth = Truth(physics, portal_id, cache_days=1, bms=bms)
    first_s = -(-start_ns // NS)
    first_s = -(-first_s // step_s) * step_s
    end_s = -(-end_ns // NS)  # exclusive
    day = first_s // DAY_S
    plans: list[_RowPlan] | None = None
    while day * DAY_S < end_s:
        lo, hi = max(first_s, day * DAY_S), min(end_s, (day + 1) * DAY_S)
        start = lo + (-(lo - first_s)) % step_s
        if start < hi:
            day_idx = np.arange(start - day * DAY_S, hi - day * DAY_S, step_s)
            for span_s in range(int(day_idx[0]) // truth.chunk_s * truth.chunk_s, int(day_idx[-1]) + 1, truth.chunk_s):
                cols = truth.chunk(day, span_s).merged()  # bounded memory with many cells: a span of the day
                plans = plans or _row_plans(list(cols), site)
                span_idx = day_idx[(day_idx >= span_s) & (day_idx < span_s + truth.chunk_s)]
                for chunk in range(0, len(span_idx), CHUNK_ROWS):  # bounded memory: one chunk of rows at a time
                    idx = span_idx[chunk : chunk + CHUNK_ROWS]
                    per_plan = [_day_rows(plan, cols, day, idx, span_s) for plan in plans]
                    for n in range(len(idx)):
                        for rows in per_plan:
                            yield rows[n]
        day += 1


def plan_samples(physics: BessPhysics, start_ns: int, end_ns: int, *, site: str = "shop") -> Iterator[Sample]:
    """The gx_plan snapshots a collector running over [start_ns, end_ns) writes: one at the first whole second
    (the collector starting), then one at each new plan (issued daily at ISSUE_S) that changes anything."""
    first_s, end_s = -(-start_ns // NS), -(-end_ns // NS)
    if first_s >= end_s:
        return
    moments = [first_s]
    day = first_s // DAY_S
    while day * DAY_S + ISSUE_S < end_s:
        if day * DAY_S + ISSUE_S > first_s:
            moments.append(day * DAY_S + ISSUE_S)
        day += 1
    last = None
    for t_s in moments:
        values = settings_at(physics.schedule, t_s)
        if values != last:
            yield from snapshot_samples(values, t_s * NS, site)
        last = values
