"""Deterministic BESS physics: a 16-cell LFP pack behind an ESS on a shop with PV, at 1 s, UTC days.

Each UTC day is simulated from midnight: the pack level (controller, current, SoC, site) in one pass
(`pack_day`), the per-cell arrays (voltages, temperatures) for any span of seconds of that day on demand
(`span_arrays`; `day_arrays` is the whole-day span). Per-cell temperatures are integrated once per day
and kept as hourly checkpoints, so a span needs no per-cell state of the whole day: memory grows with
cells x span, not cells x 86 400. A day's start state (SoC at midnight) is a per-(seed, day) draw, and the
last two hours of every day steer the pack to the next day's start SoC, so days join without a jump and
any second can be computed without simulating the past. A fast backfill and the live simulator therefore
produce identical values for the same second, whatever span they were computed in.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from collector.simulator import profiles
from collector.simulator.profiles import DAY_S, MINUTES
from collector.simulator.schedule import Schedule

CAPACITY_AH = 280.0
SOC_MIN = 0.20  # ESS minimum SoC (BatteryLife MinimumSocLimit)
SOC_MAX = 0.999
FORCE_SOC_MAX = 0.90  # the target of a forced charge when the window gives none
MAX_CHARGE_A = 140.0
MAX_DISCHARGE_A = 150.0
FORCE_CHARGE_A = 45.0
R_EXTERNAL_OHM = 1.2e-3  # busbars, fuse and shunt between the cells and the pack terminals
THERMAL_C_J_PER_K = 6000.0
DC_SYSTEM_W = 28.0
BRIDGE_START_MIN = 22 * 60
BRIDGE_END_MIN = 23 * 60 + 45

# Regimes per minute.
PARK, SELF, FORCE, BRIDGE = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class PackParams:
    """Per-cell spread drawn once from the seed."""

    capacity_ah: np.ndarray  # (cells,)
    resistance_ohm: np.ndarray  # (cells,)
    offset_ah: np.ndarray  # (cells,) charge below the most-charged cell (top balance imbalance)
    thermal_r_k_per_w: np.ndarray  # (cells,)


@dataclass(frozen=True, slots=True)
class DayArrays:
    """A span of one simulated UTC day at 1 s (index 0 = second `start_s` after midnight; whole day: 0)."""

    day: int
    regime: np.ndarray  # (n,) int8, PARK/SELF/FORCE/BRIDGE
    current_a: np.ndarray  # pack current, + = charging
    soc: np.ndarray  # pack SoC 0..1 by coulomb counting against CAPACITY_AH
    cell_v: np.ndarray  # (cells, n), terminal voltage of each cell
    cell_t_c: np.ndarray  # (cells, n)
    pack_v: np.ndarray  # voltage at the pack terminals (cells + external IR drop)
    ambient_c: np.ndarray
    pv_w: np.ndarray
    load_w: np.ndarray
    dc_system_w: np.ndarray
    start_s: int = 0
    schedule: Schedule | None = None  # the plan the controller ran (published by the GX's settings)


@dataclass(frozen=True, slots=True)
class PackDay:
    """The pack level of one UTC day at 1 s (no per-cell arrays) plus hourly per-cell temperature checkpoints."""

    day: int
    regime: np.ndarray  # (86400,) int8
    current_a: np.ndarray
    soc: np.ndarray
    ambient_c: np.ndarray
    pv_w: np.ndarray
    load_w: np.ndarray
    dc_system_w: np.ndarray
    heat_a2: np.ndarray  # (1440,) per-minute mean of I^2 (times a cell's resistance = its I^2 R heat)
    ambient_min_c: np.ndarray  # (1440,) per-minute mean ambient
    temp_hourly_c: np.ndarray  # (25, cells) cell temperatures at minutes 0, 60, ..., 1440


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, *stream])


class BessPhysics:
    """The simulated pack and site for one seed; thread-safe, caches the most recent days."""

    def __init__(self, seed: int, cells: int = 16, cache_days: int = 2) -> None:
        self.seed = seed
        self.cells = cells
        self._cache: OrderedDict[int, DayArrays] = OrderedDict()
        self._packs: OrderedDict[int, PackDay] = OrderedDict()
        self._cache_days = cache_days
        self._lock = threading.Lock()
        self._truths: dict[str, Any] = {}
        self.schedule = Schedule(seed, self.quiet_day)
        rng = _rng(seed, 0xCE11)
        offsets = np.abs(rng.normal(0.0, 1.0, cells))
        self.params = PackParams(
            capacity_ah=CAPACITY_AH * (1.0 + rng.normal(0.0, 0.015, cells)),
            resistance_ohm=0.22e-3 * (1.0 + np.abs(rng.normal(0.0, 0.15, cells))),
            offset_ah=offsets - offsets.min(),
            thermal_r_k_per_w=2.5 * (1.0 + rng.normal(0.0, 0.15, cells).clip(-0.4, 0.4)),
        )

    # --- schedule -------------------------------------------------------------------------------------
    def start_soc(self, day: int) -> float:
        """The pack SoC at 00:00 UTC of `day` (a per-day draw)."""
        return float(_rng(self.seed, day, 1).uniform(0.30, 0.70))

    def quiet_day(self, day: int) -> bool:
        """Whether the battery stays parked for the whole day."""
        return bool(_rng(self.seed, day, 2).uniform() < 0.3)

    def plan(self, day: int) -> np.ndarray:
        """The regime of each minute of the day; FORCE exactly in the windows the schedule runs that day."""
        plan = np.full(MINUTES, PARK, dtype=np.int8)
        plan[BRIDGE_START_MIN:BRIDGE_END_MIN] = BRIDGE
        if self.quiet_day(day):
            return plan
        rng = _rng(self.seed, day, 3)
        if rng.uniform() < 0.5:
            plan[0 : 6 * 60] = SELF  # the battery carries the night load
        rng.uniform()  # a draw kept so the others stay put: forced charges come from the schedule now
        plan[6 * 60 : BRIDGE_START_MIN] = SELF
        if rng.uniform() < 0.35:
            start = int(rng.integers(10 * 60, 15 * 60))
            plan[start : start + 120] = PARK  # parked block in the day
        for lo, hi, _ in self.force_minutes(day):
            plan[lo:hi] = FORCE
        return plan

    def pv_w(self, day: int) -> np.ndarray:
        """The site's PV power of UTC day `day` at 1 s: clear sky x that day's clouds (what the pack sees)."""
        return np.asarray(profiles.clear_sky_w(day) * profiles.cloud_factor(_rng(self.seed, day, 5)))

    def force_minutes(self, day: int) -> list[tuple[int, int, float]]:
        """(first minute, end minute, target SoC 0..1) of each forced-charge window run during `day`."""
        base = day * DAY_S
        return [
            ((w.start_s - base) // 60, (w.end_s - base) // 60, w.soc_pct / 100.0) for w in self.schedule.executed(day)
        ]

    def force_top(self, day: int) -> np.ndarray:
        """The SoC each minute's forced charge stops at (its window's target; FORCE_SOC_MAX elsewhere)."""
        top = np.full(MINUTES, FORCE_SOC_MAX)
        for lo, hi, soc in self.force_minutes(day):
            top[lo:hi] = soc
        return top

    def values_at(self, t_s: int, portal_id: str | None = None) -> dict[tuple[str, str], object]:
        """The GX's D-Bus state at UTC second t_s (see collector.simulator.truth.Truth.values_at)."""
        from collector.simulator.truth import DEFAULT_PORTAL_ID, Truth

        pid = portal_id or DEFAULT_PORTAL_ID
        truth = self._truths.get(pid)
        if truth is None:
            truth = self._truths.setdefault(pid, Truth(self, pid))
        return dict(truth.values_at(t_s))

    # --- simulation -----------------------------------------------------------------------------------
    def day_arrays(self, day: int) -> DayArrays:
        """The whole UTC day `day` (days since 1970-01-01) at 1 s; cached. Needs cells x 86400 x 8 B per array:
        for many cells use `span_arrays`."""
        with self._lock:
            found = self._cache.get(day)
            if found is not None:
                self._cache.move_to_end(day)
                return found
        arrays = self.span_arrays(day, 0, DAY_S)
        with self._lock:
            self._cache[day] = arrays
            while len(self._cache) > self._cache_days:
                self._cache.popitem(last=False)
        return arrays

    def pack_day(self, day: int) -> PackDay:
        """The pack level of UTC day `day` (controller, SoC, site, temperature checkpoints); cached."""
        with self._lock:
            found = self._packs.get(day)
            if found is not None:
                self._packs.move_to_end(day)
                return found
        pack = self._simulate_pack(day)
        with self._lock:
            self._packs[day] = pack
            while len(self._packs) > max(self._cache_days, 2):
                self._packs.popitem(last=False)
        return pack

    def span_arrays(self, day: int, lo_s: int, hi_s: int) -> DayArrays:
        """Seconds [lo_s, hi_s) after midnight of `day`, per-cell arrays included (not cached)."""
        if not 0 <= lo_s < hi_s <= DAY_S:
            raise ValueError(f"bad span [{lo_s}, {hi_s}) of a day")
        pack = self.pack_day(day)
        sl = slice(lo_s, hi_s)
        current, soc = pack.current_a[sl], pack.soc[sl]
        cell_v = self._cell_voltages(soc, current)
        m0, m1 = lo_s // 60, (hi_s - 1) // 60 + 1
        temps = self._minute_temps(pack, m0, m1)
        cell_t = _interp_minutes(temps, m0, lo_s, hi_s)
        pack_v = sum_cells(cell_v) + current * R_EXTERNAL_OHM
        return DayArrays(
            day, pack.regime[sl], current, soc, cell_v, cell_t, pack_v, pack.ambient_c[sl], pack.pv_w[sl],
            pack.load_w[sl], pack.dc_system_w[sl], lo_s, self.schedule,
        )  # fmt: skip

    def _simulate_pack(self, day: int) -> PackDay:
        load = profiles.shop_load_w(day, _rng(self.seed, day, 4))
        pv = self.pv_w(day)
        noise = _rng(self.seed, day, 6)
        dc_sys = DC_SYSTEM_W + noise.normal(0.0, 2.0, DAY_S)
        jitter = noise.normal(0.0, 0.12, DAY_S).clip(-0.4, 0.4)
        minute_plan = self.plan(day)
        current = self._control(
            minute_plan,
            pv - load - dc_sys,
            jitter,
            self.start_soc(day),
            self.start_soc(day + 1),
            force_top=self.force_top(day),
        )
        soc = np.clip(self.start_soc(day) + np.cumsum(current) / 3600.0 / CAPACITY_AH, 0.0, 1.0)
        ambient = profiles.ambient_c(day)
        heat_a2, amb_min = _minute_heat(current, ambient)
        hourly = self._integrate_temps(heat_a2, amb_min, every_min=60)
        return PackDay(
            day, np.repeat(minute_plan, 60), current, soc, ambient, pv, load, dc_sys, heat_a2, amb_min, hourly
        )

    def _control(
        self,
        plan: np.ndarray,
        surplus_w: np.ndarray,
        jitter: np.ndarray,
        soc0: float,
        soc_next: float,
        *,
        force_top: np.ndarray,
    ) -> np.ndarray:
        """The ESS controller, one minute at a time (SoC limits need the running state)."""
        current = np.empty(DAY_S)
        soc = soc0
        bridge_a = 0.0
        for m in range(MINUTES):
            sl = slice(m * 60, m * 60 + 60)
            code = plan[m]
            if code == BRIDGE and (m == 0 or plan[m - 1] != BRIDGE):
                remaining_s = 60.0 * int(np.count_nonzero(plan[m:] == BRIDGE))
                bridge_a = (soc_next - soc) * CAPACITY_AH * 3600.0 / remaining_s
            i = self._minute_current(code, surplus_w[sl], soc, bridge_a, self.cells)
            i = self._limit_soc(code, i, soc, float(force_top[m])) + jitter[sl]
            current[sl] = i
            soc += float(i.sum()) / 3600.0 / CAPACITY_AH
        return current

    @staticmethod
    def _minute_current(code: int, surplus_w: np.ndarray, soc: float, bridge_a: float, cells: int) -> np.ndarray:
        max_charge_a = MAX_CHARGE_A * float(np.clip((1.0 - soc) / 0.04, 0.03, 1.0))
        if code == SELF:
            pack_v = cells * float(np.interp(soc, profiles.OCV_SOC, profiles.OCV_V))
            return np.clip(surplus_w / pack_v, -MAX_DISCHARGE_A, max_charge_a)
        if code == FORCE:  # from the grid at FORCE_CHARGE_A at least; a larger PV surplus charges it all
            pack_v = cells * float(np.interp(soc, profiles.OCV_SOC, profiles.OCV_V))
            return np.minimum(np.maximum(FORCE_CHARGE_A, surplus_w / pack_v), max_charge_a)
        if code == BRIDGE:
            return np.full(60, bridge_a)
        return np.zeros(60)

    @staticmethod
    def _limit_soc(code: int, i: np.ndarray, soc: float, force_top: float) -> np.ndarray:
        if code not in (SELF, FORCE):
            return i
        top = force_top if code == FORCE else SOC_MAX
        dsoc = float(i.sum()) / 3600.0 / CAPACITY_AH
        if dsoc > 0 and soc + dsoc > top:
            return np.asarray(i * max(0.0, top - soc) / dsoc)
        if dsoc < 0 and soc + dsoc < SOC_MIN:
            return np.asarray(i * max(0.0, soc - SOC_MIN) / -dsoc)  # the grid covers the rest
        return i

    def _cell_voltages(self, soc: np.ndarray, current: np.ndarray) -> np.ndarray:
        p = self.params
        removed_ah = (1.0 - soc)[None, :] * CAPACITY_AH + p.offset_ah[:, None]
        cell_soc = 1.0 - removed_ah / p.capacity_ah[:, None]
        volts = profiles.ocv_v(cell_soc) + current[None, :] * p.resistance_ohm[:, None]
        return np.asarray(volts)

    def _thermal_step(self, t: np.ndarray, heat_a2: float, ambient_c: float) -> np.ndarray:
        """One minute of first-order I^2 R heating of every cell against the ambient."""
        p = self.params
        return t + 60.0 / THERMAL_C_J_PER_K * (heat_a2 * p.resistance_ohm - (t - ambient_c) / p.thermal_r_k_per_w)

    def _integrate_temps(self, heat_a2: np.ndarray, amb_min: np.ndarray, every_min: int) -> np.ndarray:
        """Cell temperatures from midnight at minutes 0, every_min, ..., 1440: (1440 // every_min + 1, cells)."""
        out = np.empty((MINUTES // every_min + 1, self.cells))
        t = np.full(self.cells, amb_min[0] + 0.3)
        out[0] = t
        for m in range(MINUTES):
            t = self._thermal_step(t, float(heat_a2[m]), float(amb_min[m]))
            if (m + 1) % every_min == 0:
                out[(m + 1) // every_min] = t
        return out

    def _minute_temps(self, pack: PackDay, m0: int, m1: int) -> np.ndarray:
        """Cell temperatures at minutes m0..m1 (inclusive), from the hourly checkpoint before m0."""
        m = m0 // 60 * 60
        t = pack.temp_hourly_c[m // 60]
        out = np.empty((m1 - m0 + 1, self.cells))
        if m == m0:
            out[0] = t
        while m < m1:
            t = self._thermal_step(t, float(pack.heat_a2[m]), float(pack.ambient_min_c[m]))
            m += 1
            if m >= m0:
                out[m - m0] = t
        return out

    def cell_temperatures(self, current: np.ndarray, ambient: np.ndarray) -> np.ndarray:
        """First-order I²R heating per cell against the ambient, integrated at one-minute steps (cells x 86400)."""
        heat_a2, amb_min = _minute_heat(current, ambient)
        return _interp_minutes(self._integrate_temps(heat_a2, amb_min, every_min=1), 0, 0, DAY_S)


def sum_cells(x: np.ndarray) -> np.ndarray:
    """Sum over cells (axis 0), one cell after the other: the same bits whatever the span's length (numpy's
    own reduction switches to pairwise summation for short spans)."""
    out = np.array(x[0], dtype=np.float64)
    for row in x[1:]:
        out += row
    return out


def _minute_heat(current: np.ndarray, ambient: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-minute mean of I^2 and per-minute mean ambient of a whole day."""
    return (current.reshape(MINUTES, 60) ** 2).mean(axis=1), ambient.reshape(MINUTES, 60).mean(axis=1)


def _interp_minutes(temps: np.ndarray, m0: int, lo_s: int, hi_s: int) -> np.ndarray:
    """Linear interpolation of per-minute rows (minute m0 first) at seconds [lo_s, hi_s): (cells, n).

    The same arithmetic as np.interp on a one-minute grid (slope * (x - x_j) + y_j), for all cells at once."""
    x = np.arange(lo_s, hi_s) / 60.0
    j = np.floor(x).astype(np.int64)
    below, above = temps[j - m0], temps[j - m0 + 1]
    return np.ascontiguousarray(((above - below) * (x - j)[:, None] + below).T)
