"""The GX's D-Bus state derived from the physics: per-day columns keyed by (role, D-Bus path).

A column is either a constant (int, float, str or None) or a per-second numpy array for the day. Float
arrays use NaN for an invalid (None) value. `values_at` picks one second; `history` picks many at once.

`values_at` computes the day in chunks of `chunk_seconds(cells)` seconds (the whole day for a 16-cell
pack, two minutes for 16 384 cells), so memory and start time grow with cells x chunk, not cells x day;
the per-cell paths of a chunk stay (cells, n) matrices and one second of them is read in one go. The
values do not depend on the chunking (the physics is span-independent to the bit).

The paths of each service are built beside it: devices (system, inverter/charger, MPPTs, meter, platform),
battery (shunt, BMS), plan_paths (settings, /DynamicEss); columns holds the column types.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from collector.simulator.battery import bms_columns, shunt_columns, shunt_time_to_go_s
from collector.simulator.bms import DEFAULT_BMS, BmsProfile, bms_profile
from collector.simulator.columns import Block, Column, Key, Value
from collector.simulator.devices import INVERTERS, device_columns, platform_columns, system_columns
from collector.simulator.physics import BessPhysics, DayArrays
from collector.simulator.plan_paths import dynamic_ess_columns, settings_columns
from collector.simulator.profiles import DAY_S

# What the simulator's servers and tests import from here.
__all__ = [
    "CHUNK_CELL_SECONDS",
    "DEFAULT_PORTAL_ID",
    "MODBUS_ONLY",
    "Chunk",
    "Truth",
    "chunk_columns",
    "chunk_seconds",
    "day_columns",
    "pick",
]

DEFAULT_PORTAL_ID = "c0619ab2f4e1"
MODBUS_ONLY = frozenset({("system", "/Timestamp")})  # served from register 830, never a D-Bus topic
CHUNK_CELL_SECONDS = 2_000_000  # cells x seconds computed at once by values_at (~16 MB per float matrix)
CHUNK_CHOICES_S = (86_400, 43_200, 21_600, 10_800, 7_200, 3_600, 1_800, 900, 600, 300, 120, 60)


def chunk_seconds(cells: int) -> int:
    """The span values_at computes at once: the longest choice within CHUNK_CELL_SECONDS (at least 60 s)."""
    for chunk_s in CHUNK_CHOICES_S:
        if cells * chunk_s <= CHUNK_CELL_SECONDS:
            return chunk_s
    return CHUNK_CHOICES_S[-1]


@dataclass(frozen=True, slots=True)
class Chunk:
    """The columns of seconds [start_s, start_s + n) of a day: per-cell paths kept as (cells, n) blocks."""

    day: int
    start_s: int
    columns: dict[Key, Column]  # every path but the per-cell ones
    blocks: tuple[Block, ...]

    def merged(self) -> dict[Key, Column]:
        """One column per (role, path), the per-cell ones as rows of their block (views, no copy)."""
        out = dict(self.columns)
        for keys, matrix in self.blocks:
            for i, key in enumerate(keys):
                out[key] = matrix[i]
        return out

    def values(self, i: int) -> dict[Key, Value]:
        """Every (role, path) at index i of the chunk as plain Python values (NaN -> None)."""
        out = {key: pick(col, i) for key, col in self.columns.items()}
        for keys, matrix in self.blocks:
            column = matrix[:, i]
            values: list[Any] = column.tolist()
            if column.dtype.kind == "f" and np.isnan(column).any():
                values = [None if math.isnan(v) else v for v in values]
            out.update(zip(keys, values, strict=True))
        return out


def chunk_columns(
    a: DayArrays,
    portal_id: str,
    time_to_go_s: np.ndarray | None = None,
    bms: BmsProfile | None = None,
    inverter: str = "vebus",
) -> Chunk:
    """Every (role, path) of the simulated GX for the span `a` (time_to_go_s: the span's slice of the day's
    time-to-go; computed from `a` when None, which needs `a` to be the whole day; bms: the BMS family;
    inverter: one of INVERTERS)."""
    ttg = shunt_time_to_go_s(a.current_a, a.soc) if time_to_go_s is None else time_to_go_s
    shunt = shunt_columns(a, a.day, ttg)
    bms_paths, blocks = bms_columns(a, bms or bms_profile(DEFAULT_BMS))
    out: dict[Key, Column] = {}
    system = system_columns(a, shunt, portal_id)
    system.update(dynamic_ess_columns(a, shunt["/Dc/0/Power"]))
    for role, paths in (
        ("system", system),
        *device_columns(a, system, inverter).items(),
        ("settings", settings_columns(a)),
        ("platform", platform_columns()),
        ("shunt", shunt),
        ("bms", bms_paths),
    ):
        for path, column in paths.items():
            out[(role, path)] = column
    return Chunk(a.day, a.start_s, out, tuple(blocks))


def day_columns(
    a: DayArrays, portal_id: str, bms: BmsProfile | None = None, inverter: str = "vebus"
) -> dict[Key, Column]:
    """Every (role, path) of the simulated GX for one whole day."""
    return chunk_columns(a, portal_id, bms=bms, inverter=inverter).merged()


def pick(column: Column, i: int) -> Value:
    """One second of a column as a plain Python value (NaN -> None)."""
    if not isinstance(column, np.ndarray):
        return column
    v = column[i]
    if column.dtype.kind == "f":
        return None if np.isnan(v) else float(v)
    if column.dtype.kind in "iub":
        return int(v)
    return str(v)


class Truth:
    """values_at(t_s): the GX's D-Bus state at a UTC second, at full precision (None = invalid)."""

    def __init__(
        self,
        physics: BessPhysics,
        portal_id: str = DEFAULT_PORTAL_ID,
        cache_days: int = 2,
        bms: str = DEFAULT_BMS,
        inverter: str = "vebus",
    ) -> None:
        if inverter not in INVERTERS:
            raise ValueError(f"unknown inverter {inverter!r}; known: {', '.join(INVERTERS)}")
        self.inverter = inverter
        self.physics = physics
        self.portal_id = portal_id
        self.bms = bms_profile(bms)
        self.chunk_s = chunk_seconds(physics.cells)
        self._cache: OrderedDict[tuple[int, int], Chunk] = OrderedDict()
        self._cache_n = cache_days if self.chunk_s == DAY_S else max(cache_days, 3)
        self._ttg: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._last: tuple[int, dict[Key, Value]] | None = None

    def columns(self, day: int) -> dict[Key, Column]:
        """All columns of one whole UTC day (cached when values_at computes whole days too)."""
        if self.chunk_s == DAY_S:
            return self.chunk(day, 0).merged()
        return day_columns(self.physics.day_arrays(day), self.portal_id, self.bms, self.inverter)

    def prefetch(self, t_s: int) -> None:
        """Compute the chunk holding UTC second t_s ahead of time (a no-op when it is cached)."""
        day, i = divmod(int(t_s), DAY_S)
        self.chunk(day, i // self.chunk_s * self.chunk_s)

    def values_at(self, t_s: int) -> dict[Key, Value]:
        """The value of every (role, path) at UTC second `t_s` (includes ("system", "/Timestamp"))."""
        return dict(self.shared_values_at(t_s))

    def shared_values_at(self, t_s: int) -> dict[Key, Value]:
        """values_at without the copy: the same dict for every call within one second; never modify it."""
        t_s = int(t_s)
        last = self._last
        if last is not None and last[0] == t_s:
            return last[1]
        day, i = divmod(t_s, DAY_S)
        start = i // self.chunk_s * self.chunk_s
        out = self.chunk(day, start).values(i - start)
        out[("system", "/Timestamp")] = t_s
        self._last = (t_s, out)
        return out

    def chunk(self, day: int, start_s: int) -> Chunk:
        """The columns of seconds [start_s, start_s + chunk_s) of `day` (start_s a multiple of chunk_s); cached."""
        with self._lock:
            found = self._cache.get((day, start_s))
            if found is not None:
                self._cache.move_to_end((day, start_s))
                return found
        end_s = min(start_s + self.chunk_s, DAY_S)
        if start_s == 0 and end_s == DAY_S:
            chunk = chunk_columns(self.physics.day_arrays(day), self.portal_id, bms=self.bms, inverter=self.inverter)
        else:
            arrays = self.physics.span_arrays(day, start_s, end_s)
            ttg = self._time_to_go(day)[start_s:end_s]
            chunk = chunk_columns(arrays, self.portal_id, ttg, self.bms, self.inverter)
        with self._lock:
            self._cache[(day, start_s)] = chunk
            while len(self._cache) > self._cache_n:
                self._cache.popitem(last=False)
        return chunk

    def _time_to_go(self, day: int) -> np.ndarray:
        """The shunt's TimeToGo for the whole day (a 60 s running mean of the pack current; cheap)."""
        with self._lock:
            found = self._ttg.get(day)
        if found is None:
            pack = self.physics.pack_day(day)
            found = shunt_time_to_go_s(pack.current_a, pack.soc)
            with self._lock:
                self._ttg[day] = found
                while len(self._ttg) > 2:
                    self._ttg.popitem(last=False)
        return found
