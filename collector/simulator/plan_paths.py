"""The plan's paths on the simulated GX: the settings service (ESS windows, Dynamic ESS slots, the static
settings) and com.victronenergy.system's /DynamicEss/* (collector.simulator.schedule makes the plan)."""

from __future__ import annotations

import numpy as np

from collector.simulator.columns import Column, Key, Value
from collector.simulator.physics import FORCE, DayArrays
from collector.simulator.profiles import DAY_S
from collector.simulator.schedule import (
    DESS_MODE,
    ESS_CHARGE,
    ISSUE_S,
    TIME_ZONE,
    Schedule,
    dess_slot_values,
)

SYSTEM_NAME = "Shop BESS"


# The settings that do not change in the simulation (the ESS windows: collector/simulator/schedule.py).
STATIC_SETTINGS: dict[str, Value] = {
    "/Settings/SystemSetup/SystemName": SYSTEM_NAME,
    "/Settings/CGwacs/BatteryLife/MinimumSocLimit": 20.0,
    "/Settings/CGwacs/Hub4Mode": 1,
    "/Settings/CGwacs/BatteryLife/SocLimit": 20.0,
    "/Settings/System/TimeZone": TIME_ZONE,
    "/Settings/DynamicEss/Mode": DESS_MODE,
}
for _n, (_day, _start, _duration, _soc, _discharge) in enumerate(ESS_CHARGE):
    _base = f"/Settings/CGwacs/BatteryLife/Schedule/Charge/{_n}"
    STATIC_SETTINGS.update(
        {
            f"{_base}/Day": _day,
            f"{_base}/Start": _start,
            f"{_base}/Duration": _duration,
            f"{_base}/Soc": _soc,
            f"{_base}/AllowDischarge": _discharge,
        }
    )


def settings_at(schedule: Schedule, t_s: int) -> dict[Key, Value]:
    """The settings service's plan-related values at UTC second t_s without computing the day (the same values
    values_at gives: the backfill's gx_plan snapshots are built from them)."""
    out: dict[Key, Value] = {("settings", path): value for path, value in STATIC_SETTINGS.items()}
    for n, slot in enumerate(dess_slot_values(schedule.plan_at(t_s))):
        for name, value in slot.items():
            out[("settings", f"/Settings/DynamicEss/Schedule/{n}/{name}")] = value
    return out


def settings_columns(a: DayArrays) -> dict[str, Column]:
    out: dict[str, Column] = dict(STATIC_SETTINGS)
    out["/Settings/CGwacs/BatteryLife/State"] = np.where(a.regime == FORCE, 12, 10)
    if a.schedule is not None:
        out.update(_dess_slots(a, a.schedule))
    return out


def _dess_slots(a: DayArrays, schedule: Schedule) -> dict[str, Column]:
    """The 48 Dynamic ESS slots over the span: the plan issued the day before until ISSUE_S, then the day's."""
    seconds = a.start_s + np.arange(len(a.regime))
    before = dess_slot_values(schedule.issued(a.day - 1))
    after = dess_slot_values(schedule.issued(a.day))
    out: dict[str, Column] = {}
    for n, (old, new) in enumerate(zip(before, after, strict=True)):
        for name, value in old.items():
            if value == new[name] or seconds[0] >= ISSUE_S:
                column: Column = new[name]
            elif seconds[-1] < ISSUE_S:
                column = value
            else:
                column = np.where(seconds < ISSUE_S, value, new[name])
            out[f"/Settings/DynamicEss/Schedule/{n}/{name}"] = column
    return out


def dynamic_ess_columns(a: DayArrays, battery_power_w: np.ndarray) -> dict[str, Column]:
    """com.victronenergy.system's /DynamicEss/*: what dbus-systemcalc-py's delegate shows while a slot runs
    (active, its target SoC, strategy, restrictions and feed-in, the charge rate in W) and after it (off,
    target 0, those invalid, error 3 "no matching schedule"; dbus-systemcalc-py @9730db0,
    delegates/dynamicess.py, deactivate()). The error's 60 s delay (ERROR_TIMEOUT) is not simulated."""
    active = a.regime == FORCE
    target = np.zeros(len(a.regime))
    if a.schedule is not None:
        seconds = a.start_s + np.arange(len(a.regime))
        for w in a.schedule.executed(a.day):
            lo, hi = w.start_s - a.day * DAY_S, w.end_s - a.day * DAY_S
            target[(seconds >= lo) & (seconds < hi)] = w.soc_pct
    invalid = np.where(active, 0.0, np.nan)
    return {
        "/DynamicEss/Available": 1,
        "/DynamicEss/Active": active.astype(np.int64),
        "/DynamicEss/TargetSoc": np.where(active, target, 0.0),
        "/DynamicEss/Strategy": invalid,
        "/DynamicEss/Restrictions": invalid,
        "/DynamicEss/AllowGridFeedIn": invalid,
        "/DynamicEss/ChargeRate": np.where(active, np.maximum(np.round(battery_power_w), 0.0), np.nan),
        "/DynamicEss/ErrorCode": np.where(active, 0, 3),
    }
