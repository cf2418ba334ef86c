"""The simulated site's plan: a Dynamic ESS day-ahead schedule that the ESS controller executes.

Every day at ISSUE_S (12:00 UTC, when day-ahead prices are known) a new plan is issued. It covers the rest
of that day and the whole next UTC day, and replaces the previous one: the GX executes, at any second, the
latest plan issued at or before it. A plan is a few forced-charge windows (Dynamic ESS strategy 0 "target
SoC" with a target SoC), published as the GX's Dynamic ESS slots: windows in start order in slots 0, 1, ...,
every other slot of the 48 unused (Start 0, as dbus-systemcalc-py skips it). Windows fall in the cheap night
hours (start 02:00-03:30, on 45 % of the busy days) and in the afternoon (start 13:00-17:00; cheap midday
power comes with the sun, so up to 35 % of the busy days at midsummer and none at midwinter), 1 to 2.5 h
long, never across 12:00 or midnight, so a new plan never cuts a running window short. A window is known
only from the plan that announces it (the next night's from 12:00 the day before), and an afternoon window
is first announced a day ahead, then the next day's plan revises it now and then (kept, moved, dropped or
newly added): the plan known earlier differs from the plan executed, which is what makes "as of" matter.
Days the battery stays parked have no windows.

Simplifications (docs/simulator.md): outside its windows the controller follows its own regimes (self-
consumption, parked, the evening bridge) instead of slots covering every hour; the ESS scheduled charge
windows are published (5 slots, the first one configured but disabled) and never executed.
Pure and deterministic per (seed, day).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from collector.simulator.profiles import DAY_S, season

ISSUE_S = 12 * 3600  # seconds after 00:00 UTC at which each day's plan is issued
DESS_SLOTS = 48  # dbus-systemcalc-py delegates/dynamicess.py NUM_SCHEDULES
ESS_SLOTS = 5  # dbus-systemcalc-py delegates/schedule.py NUM_SCHEDULES
QUARTER_S = 900
AFTERNOON_MAX_P = 0.35  # the chance of an afternoon charge at midsummer (none at midwinter)
DESS_MODE = 1  # Auto (VRM)
TIME_ZONE = "Europe/Amsterdam"
# The ESS scheduled charge windows: slot 0 a weekday night charge the owner disabled (Day -8: negative =
# disabled, 8 = weekdays), the others at dbus-systemcalc-py's defaults (Day -7, Start 0, Duration 0, Soc 100).
ESS_CHARGE = ((-8, 2 * 3600, 3 * 3600, 90.0, 0),) + ((-7, 0, 0, 100.0, 0),) * (ESS_SLOTS - 1)


def _setting_limits() -> dict[str, tuple[float, float]]:
    """(min, max) of each plan setting as localsettings publishes them (0, 0: unbounded): the get_settings()
    tuples of dbus-systemcalc-py @9730db0, delegates/dynamicess.py and delegates/schedule.py."""
    dess = {"Start": (0, 0), "Duration": (0, 0), "TargetSoc": (0.0, 100.0), "Soc": (0, 100)}
    dess |= {"AllowGridFeedIn": (0, 1), "Restrictions": (0, 3), "Strategy": (0, 3), "Flags": (0, 3)}
    charge = {"Day": (-11, 11), "Start": (0, 0), "Duration": (0, 0), "Soc": (0, 100), "AllowDischarge": (0, 1)}
    out: dict[str, tuple[float, float]] = {"/Settings/DynamicEss/Mode": (0, 4)}
    for n in range(DESS_SLOTS):
        out |= {f"/Settings/DynamicEss/Schedule/{n}/{name}": lim for name, lim in dess.items()}
    for n in range(ESS_SLOTS):
        out |= {f"/Settings/CGwacs/BatteryLife/Schedule/Charge/{n}/{name}": lim for name, lim in charge.items()}
    return out


PLAN_SETTING_LIMITS = _setting_limits()


@dataclass(frozen=True, slots=True)
class Window:
    """One forced-charge window of a plan (a Dynamic ESS slot)."""

    start_s: int  # Unix seconds, UTC
    duration_s: int
    soc_pct: float  # target SoC

    @property
    def end_s(self) -> int:
        return self.start_s + self.duration_s


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, *stream])


def _window(day: int, rng: np.random.Generator, first_q: int, last_q: int, targets: tuple[float, ...]) -> Window:
    """A window starting at a quarter hour in [first_q, last_q] of `day`, 1 to 2.5 h long."""
    start_q = int(rng.integers(first_q, last_q + 1))
    duration_q = int(rng.integers(4, 11))
    return Window(day * DAY_S + start_q * QUARTER_S, duration_q * QUARTER_S, float(rng.choice(targets)))


class Schedule:
    """The plans issued for one seed; `quiet_day(day)` says whether the battery stays parked that day."""

    def __init__(self, seed: int, quiet_day: Callable[[int], bool]) -> None:
        self.seed = seed
        self._quiet_day = quiet_day
        self.issued = lru_cache(maxsize=16)(self._issued)

    def _night(self, day: int) -> Window | None:
        """The night charge of `day` (announced by the plan issued the day before)."""
        rng = _rng(self.seed, day, 7)
        if self._quiet_day(day) or rng.uniform() >= 0.45:
            return None
        return _window(day, rng, 8, 14, (80.0, 85.0, 90.0, 95.0))  # the cheap hours: 02:00-03:30 start

    def _afternoon(self, day: int, revised: bool) -> Window | None:
        """The afternoon charge of `day`: as first announced (the day before), or as revised on the day."""
        if self._quiet_day(day):
            return None
        rng = _rng(self.seed, day, 8)
        sunny = AFTERNOON_MAX_P * (1.0 + season(day)) / 2  # cheap midday power comes with the sun: summer
        first = _window(day, rng, 52, 68, (90.0, 95.0, 100.0)) if rng.uniform() < sunny else None
        if not revised:
            return first
        change = _rng(self.seed, day, 9)
        if change.uniform() >= 0.35:
            return first  # the announcement stands
        if first is not None and change.uniform() < 0.5:
            return None  # dropped
        if first is None and change.uniform() >= (1.0 + season(day)) / 2:
            return None  # nothing added (in winter hardly ever)
        return _window(day, change, 52, 68, (90.0, 100.0))  # moved or newly added

    def _issued(self, day: int) -> tuple[Window, ...]:
        """The windows of the plan issued at ISSUE_S of `day` (its afternoon, the next day's night and afternoon)."""
        found = (self._afternoon(day, revised=True), self._night(day + 1), self._afternoon(day + 1, revised=False))
        return tuple(w for w in found if w is not None)

    @staticmethod
    def issue_day(t_s: int) -> int:
        """The day whose plan is in force at UTC second t_s."""
        day, s = divmod(int(t_s), DAY_S)
        return day if s >= ISSUE_S else day - 1

    def plan_at(self, t_s: int) -> tuple[Window, ...]:
        """The plan in force at UTC second t_s (the latest issued at or before it)."""
        return self.issued(self.issue_day(t_s))

    def executed(self, day: int) -> tuple[Window, ...]:
        """The windows the GX runs during UTC day `day`: the morning's from the plan issued the day before, the
        afternoon's from the day's own plan."""
        lo, issue, hi = day * DAY_S, day * DAY_S + ISSUE_S, (day + 1) * DAY_S
        morning = [w for w in self.issued(day - 1) if lo <= w.start_s < issue]
        afternoon = [w for w in self.issued(day) if issue <= w.start_s < hi]
        return (*morning, *afternoon)


def dess_slot_values(windows: tuple[Window, ...]) -> list[dict[str, float | int]]:
    """The 48 Dynamic ESS slots publishing `windows` (path suffix -> value), as the settings service holds them."""
    out: list[dict[str, float | int]] = []
    for n in range(DESS_SLOTS):
        if n < len(windows):
            w = windows[n]
            start, duration, soc, target = w.start_s, w.duration_s, round(w.soc_pct), w.soc_pct
        else:
            start, duration, soc, target = 0, 0, 0, 0.0
        out.append(
            {
                "Start": start,
                "Duration": duration,
                "Soc": soc,
                "TargetSoc": target,
                "Strategy": 0,
                "AllowGridFeedIn": 0,
                "Restrictions": 0,
                "Flags": 0,
            }
        )
    return out
