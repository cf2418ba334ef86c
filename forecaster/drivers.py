"""Known-future drivers: the GX's own charge plan (measurement `gx_plan`) and a PV forecast (`pv_forecast`),
turned into covariates at any timestamp AS-OF a moment: only snapshots and issues stamped at or before it.

Pure: typed records in, numpy arrays out (rows from InfluxDB are parsed here; forecaster/store.py reads them).
One definition per covariate (`values`), used for a window's horizon (as-of the cut-off, `horizon`) and for
the history that fills the context and the training data (each step as-of its own start, `history`), so
Chronos-2's future covariates and the gradient-boosting features see the same numbers.

Victron semantics implemented here (dbus-systemcalc-py, commit 9730db006d9ac1fa6fa885adea78156ea0c15e9e):
- ESS scheduled charge windows (delegates/schedule.py, `_charge_windows`, `prev_schedule_day`,
  `next_schedule_day`): Day < 0 = disabled; 0..6 = Sunday..Saturday; 7 = every day; 8 = Monday..Friday;
  9 = Saturday and Sunday; 10 and up = the first day of the month. Start = seconds after local midnight of
  a matching day (the GX's local time: `datetime.now()`), the window lasts Duration seconds from there and
  may run past midnight into the next day.
- Dynamic ESS slots (delegates/dynamicess.py, `windows`): Start is Unix time (a slot with Start 0 is unused),
  the slot lasts Duration seconds; the schedule is followed only in mode 1 (Auto) or 4 (Local) (`_on_timer`
  switches off in 0, 2 and 3).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

NS = 1_000_000_000
DAY_S = 86400

PLAN_TARGET_SOC = "plan_target_soc_pct"  # the highest target SoC scheduled over the step (NaN: none)
PLAN_CHARGE_ACTIVE = "plan_charge_active"  # share of the step covered by a scheduled charge (0..1)
PV_FORECAST = "pv_forecast_w"  # forecast mean PV power at the step (NaN: no forecast covers it)
PLAN_FEATURES = (PLAN_TARGET_SOC, PLAN_CHARGE_ACTIVE)
DRIVER_FEATURES = (*PLAN_FEATURES, PV_FORECAST)
NEUTRAL = {PLAN_TARGET_SOC: math.nan, PLAN_CHARGE_ACTIVE: 0.0, PV_FORECAST: math.nan}

DESS_FOLLOWED_MODES = frozenset({1, 4})
PV_LOOKBACK_NS = 7 * DAY_S * NS  # an issue older than this before a step is not searched for it


@dataclass(frozen=True)
class DessSlot:
    """One Dynamic ESS schedule slot (`kind=dess`)."""

    start_s: int  # Unix seconds
    duration_s: int
    soc_pct: float


@dataclass(frozen=True)
class ChargeWindow:
    """One ESS scheduled charge window (`kind=ess_charge`)."""

    day: int  # Victron's day code (module docstring)
    start_s: int  # seconds after local midnight
    duration_s: int
    soc_pct: float


@dataclass(frozen=True)
class PlanSnapshot:
    """The plan as the collector saw it at ts_ns (every slot of one snapshot shares that timestamp)."""

    ts_ns: int
    dess: tuple[DessSlot, ...] = ()
    windows: tuple[ChargeWindow, ...] = ()
    dess_mode: int | None = None  # None: not recorded (the slots are taken as followed)
    min_soc_pct: float | None = None
    time_zone: str | None = None  # the GX's /Settings/System/TimeZone when recorded


@dataclass(frozen=True, eq=False)
class PvIssue:
    """One issued PV forecast: periods [target, target + period) with their mean power."""

    ts_ns: int
    provider: str
    target_ns: np.ndarray  # int64, sorted
    period_s: np.ndarray  # int64
    power_w: np.ndarray  # float

    def at(self, ts_ns: np.ndarray) -> np.ndarray:
        """Forecast power at each timestamp (NaN where no period of this issue covers it)."""
        out = np.full(ts_ns.shape, np.nan)
        if self.target_ns.size == 0:
            return out
        idx = np.searchsorted(self.target_ns, ts_ns, side="right") - 1
        ok = idx >= 0
        ok[ok] = ts_ns[ok] < self.target_ns[idx[ok]] + self.period_s[idx[ok]] * NS
        out[ok] = self.power_w[idx[ok]]
        return out


@dataclass(frozen=True, eq=False)
class Drivers:
    """Every plan snapshot and PV issue of a span, oldest first, and the site's time zone (used for ESS charge
    windows when a snapshot does not carry the GX's own)."""

    plans: tuple[PlanSnapshot, ...] = ()
    pv: tuple[PvIssue, ...] = ()
    time_zone: str = "UTC"
    _plan_ts: np.ndarray = field(init=False, repr=False)
    _pv_ts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        plans = tuple(sorted(self.plans, key=lambda p: p.ts_ns))
        pv = tuple(sorted(self.pv, key=lambda p: p.ts_ns))
        object.__setattr__(self, "plans", plans)
        object.__setattr__(self, "pv", pv)
        object.__setattr__(self, "_plan_ts", np.array([p.ts_ns for p in plans], dtype=np.int64))
        object.__setattr__(self, "_pv_ts", np.array([p.ts_ns for p in pv], dtype=np.int64))

    def until(self, asof_ns: int) -> Drivers:
        """Only what was issued at or before `asof_ns` (what was known then)."""
        n_plan = int(np.searchsorted(self._plan_ts, asof_ns, side="right"))
        n_pv = int(np.searchsorted(self._pv_ts, asof_ns, side="right"))
        return Drivers(self.plans[:n_plan], self.pv[:n_pv], self.time_zone)

    def plan_index(self, asof_ns: np.ndarray) -> np.ndarray:
        """Per moment, the index of the snapshot in force (the newest at or before it); -1 = none yet."""
        return np.searchsorted(self._plan_ts, asof_ns, side="right") - 1

    def pv_index(self, asof_ns: np.ndarray) -> np.ndarray:
        """Per moment, the index of the newest PV issue at or before it; -1 = none yet."""
        return np.searchsorted(self._pv_ts, asof_ns, side="right") - 1


def uses_drivers(keys: Iterable[str]) -> bool:
    """Whether any of these covariates is a driver (so the plan and the PV forecast must be read)."""
    return any(k in DRIVER_FEATURES for k in keys)


# --- ESS scheduled charge windows ------------------------------------------------------------------------


def day_matches(code: int, day: date) -> bool:
    """Whether a charge window with Victron's Day `code` runs on the (local) date `day`."""
    if code < 0:
        return False
    if code < 7:
        return (day.weekday() + 1) % 7 == code  # Victron counts Sunday = 0, Python's Monday = 0
    if code == 7:
        return True
    if code == 8:
        return day.weekday() < 5
    if code == 9:
        return day.weekday() >= 5
    return day.day == 1


def zone(name: str | None, default: str) -> ZoneInfo:
    """The time zone `name` (the GX's), else `default` (the config's), else UTC."""
    for candidate in (name, default):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _local_ns(day: date, seconds: int, tz: ZoneInfo) -> int:
    wall = datetime(day.year, day.month, day.day) + timedelta(seconds=seconds)
    return int(wall.replace(tzinfo=tz).timestamp()) * NS


def window_spans(windows: Iterable[ChargeWindow], lo_ns: int, hi_ns: int, tz: ZoneInfo) -> list[tuple[int, int, float]]:
    """(start ns, stop ns, target SoC) of every enabled charge window occurring in [lo, hi), UTC. Wall-clock
    times in the GX's zone (a window crossing midnight continues into the next day)."""
    active = [w for w in windows if w.day >= 0 and w.duration_s > 0]
    if not active or hi_ns <= lo_ns:
        return []
    longest_days = max(w.duration_s for w in active) // DAY_S + 1
    first = datetime.fromtimestamp(lo_ns // NS, UTC).astimezone(tz).date() - timedelta(days=longest_days)
    last = datetime.fromtimestamp(hi_ns // NS, UTC).astimezone(tz).date()
    spans = []
    day = first
    while day <= last:
        for w in active:
            if day_matches(w.day, day):
                start_s = w.start_s % DAY_S
                start, stop = _local_ns(day, start_s, tz), _local_ns(day, start_s + w.duration_s, tz)
                if start < hi_ns and stop > lo_ns:
                    spans.append((start, stop, float(w.soc_pct)))
        day += timedelta(days=1)
    return spans


# --- Dynamic ESS ------------------------------------------------------------------------------------------


def dess_spans(snapshot: PlanSnapshot) -> list[tuple[int, int, float, bool]]:
    """(start ns, stop ns, target SoC, is a charge) of every used slot, when the schedule is followed. A slot
    is a charge when its target is above the one in force just before it (the slot ending at its start, else
    the minimum SoC, else 0): Dynamic ESS charges towards each slot's target by the slot's end."""
    if snapshot.dess_mode is not None and snapshot.dess_mode not in DESS_FOLLOWED_MODES:
        return []
    slots = sorted((s for s in snapshot.dess if s.start_s > 0 and s.duration_s > 0), key=lambda s: s.start_s)
    out = []
    for slot in slots:
        before = [s.soc_pct for s in slots if s.start_s < slot.start_s <= s.start_s + s.duration_s]
        previous = before[-1] if before else (snapshot.min_soc_pct or 0.0)
        start = slot.start_s * NS
        out.append((start, start + slot.duration_s * NS, float(slot.soc_pct), slot.soc_pct > previous))
    return out


# --- covariates -------------------------------------------------------------------------------------------


def _plan_values(
    snapshot: PlanSnapshot | None, ts_ns: np.ndarray, step_ns: int, default_tz: str
) -> dict[str, np.ndarray]:
    target = np.full(ts_ns.shape, np.nan)
    active = np.zeros(ts_ns.shape)
    if snapshot is None or ts_ns.size == 0:
        return {PLAN_TARGET_SOC: target, PLAN_CHARGE_ACTIVE: active}
    lo, hi = int(ts_ns.min()), int(ts_ns.max()) + step_ns
    tz = zone(snapshot.time_zone, default_tz)
    spans = [(a, b, soc, True) for a, b, soc in window_spans(snapshot.windows, lo, hi, tz)]
    spans += dess_spans(snapshot)
    for start, stop, soc, charge in spans:
        overlap = (np.minimum(stop, ts_ns + step_ns) - np.maximum(start, ts_ns)) / step_ns
        hit = overlap > 0
        if not hit.any():
            continue
        target[hit] = np.fmax(target[hit], soc)
        if charge:
            active[hit] = np.maximum(active[hit], np.minimum(overlap[hit], 1.0))
    return {PLAN_TARGET_SOC: target, PLAN_CHARGE_ACTIVE: active}


def _pv_values(drivers: Drivers, ts_ns: np.ndarray, step_ns: int, asof_ns: np.ndarray) -> np.ndarray:
    """Per step, the newest issue known at its as-of moment whose periods cover the step's middle."""
    out = np.full(ts_ns.shape, np.nan)
    newest = drivers.pv_index(asof_ns)
    if ts_ns.size == 0 or newest.max() < 0:
        return out
    middle = ts_ns + step_ns // 2
    todo = newest >= 0
    oldest_useful = int(middle.min()) - PV_LOOKBACK_NS
    for k in range(int(newest.max()), -1, -1):
        issue = drivers.pv[k]
        if issue.ts_ns < oldest_useful or not todo.any():
            break
        pick = np.flatnonzero(todo & (newest >= k))
        if pick.size == 0:
            continue
        found = issue.at(middle[pick])
        got = np.isfinite(found)
        out[pick[got]] = found[got]
        todo[pick[got]] = False
    return out


def values(
    drivers: Drivers | None, keys: Sequence[str], ts_ns: np.ndarray, step_ns: int, asof_ns: np.ndarray
) -> dict[str, np.ndarray]:
    """The covariates `keys` at the steps [ts, ts + step), each as known at its `asof_ns` (per step).
    No drivers, no plan yet or no forecast covering a step: the neutral value (NEUTRAL)."""
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    asof_ns = np.broadcast_to(np.asarray(asof_ns, dtype=np.int64), ts_ns.shape)
    out = {k: np.full(ts_ns.shape, NEUTRAL[k]) for k in keys}
    if drivers is None:
        return out
    if any(k in PLAN_FEATURES for k in keys) and drivers.plans:
        index = drivers.plan_index(asof_ns)
        for i in np.unique(index):
            if i < 0:
                continue
            rows = np.flatnonzero(index == i)
            found = _plan_values(drivers.plans[int(i)], ts_ns[rows], step_ns, drivers.time_zone)
            for key in keys:
                if key in found:
                    out[key][rows] = found[key]
    if PV_FORECAST in keys and drivers.pv:
        out[PV_FORECAST] = _pv_values(drivers, ts_ns, step_ns, asof_ns)
    return out


def horizon(
    drivers: Drivers | None, keys: Sequence[str], cutoff_ns: int, ts_ns: np.ndarray, step_ns: int
) -> dict[str, np.ndarray]:
    """The covariates over a forecast's horizon as known at the cut-off: only snapshots and issues stamped
    at or before it are even passed on."""
    known = drivers.until(cutoff_ns) if drivers is not None else None
    return values(known, keys, ts_ns, step_ns, np.full(len(ts_ns), cutoff_ns, dtype=np.int64))


def history(
    drivers: Drivers | None, keys: Sequence[str], grid_start_ns: int, step_ns: int, n: int
) -> dict[str, np.ndarray]:
    """The covariates on a grid, each step as known at its own start (what the context of any later cut-off
    may hold, and what a model is trained on)."""
    ts = grid_start_ns + step_ns * np.arange(n, dtype=np.int64)
    return values(drivers, keys, ts, step_ns, ts)


def with_history(
    series: Mapping[str, np.ndarray], drivers: Drivers | None, keys: Sequence[str], grid_start_ns: int, step_ns: int
) -> dict[str, np.ndarray]:
    """`series` plus the history of every driver covariate among `keys` on the same grid (those it lacks)."""
    wanted = [k for k in keys if k in DRIVER_FEATURES and k not in series]
    if not wanted or not series:
        return dict(series)
    n = len(next(iter(series.values())))
    return {**series, **history(drivers, wanted, grid_start_ns, step_ns, n)}


# --- InfluxDB rows -> records -----------------------------------------------------------------------------


def _int(row: Mapping[str, object], key: str) -> int | None:
    value = row.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(row: Mapping[str, object], key: str) -> float | None:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def snapshots_from_rows(rows: Iterable[Mapping[str, object]]) -> list[PlanSnapshot]:
    """`gx_plan` points (time, kind, slot and fields) grouped into snapshots by timestamp. A slot missing a
    required field is left out of its snapshot (disabled slots are kept: they say a slot was removed)."""
    grouped: dict[int, list[Mapping[str, object]]] = {}
    for row in rows:
        grouped.setdefault(int(row["time"]), []).append(row)  # type: ignore[call-overload]
    snapshots = []
    for ts, points in sorted(grouped.items()):
        dess, windows = [], []
        settings: Mapping[str, object] = {}
        for p in points:
            kind = p.get("kind")
            start, duration, soc = _int(p, "start_s"), _int(p, "duration_s"), _float(p, "soc_pct")
            if kind == "settings":
                settings = p
            elif kind == "dess" and None not in (start, duration, soc):
                dess.append(DessSlot(start, duration, soc))  # type: ignore[arg-type]
            elif kind == "ess_charge" and None not in (start, duration, soc, _int(p, "day")):
                windows.append(ChargeWindow(_int(p, "day"), start, duration, soc))  # type: ignore[arg-type]
        tz = settings.get("time_zone")
        snapshots.append(
            PlanSnapshot(
                ts,
                tuple(dess),
                tuple(windows),
                _int(settings, "dess_mode"),
                _float(settings, "min_soc_pct"),
                tz if isinstance(tz, str) and tz else None,
            )
        )
    return snapshots


def issues_from_rows(rows: Iterable[Mapping[str, object]]) -> list[PvIssue]:
    """`pv_forecast` points grouped into issues by (provider, issue time); periods sorted by start."""
    grouped: dict[tuple[str, int], list[tuple[int, int, float]]] = {}
    for row in rows:
        target, period, power = _int(row, "target_ns"), _int(row, "period_s"), _float(row, "power_w")
        if target is None or period is None or power is None or period <= 0:
            continue
        key = (str(row.get("provider") or ""), int(row["time"]))  # type: ignore[call-overload]
        grouped.setdefault(key, []).append((target, period, power))
    issues = []
    for (provider, ts), periods in sorted(grouped.items(), key=lambda kv: kv[0][1]):
        periods.sort()
        issues.append(
            PvIssue(
                ts,
                provider,
                np.array([p[0] for p in periods], dtype=np.int64),
                np.array([p[1] for p in periods], dtype=np.int64),
                np.array([p[2] for p in periods], dtype=float),
            )
        )
    return issues
