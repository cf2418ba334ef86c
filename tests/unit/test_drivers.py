"""Known-future drivers (forecaster.drivers): Victron's day codes, charge windows across midnight and in the
GX's time zone, Dynamic ESS slots in Unix time, as-of selection of plan snapshots and PV issues, no plan."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from forecaster import drivers as d
from forecaster.gbm_features import feature_names
from forecaster.windows import build_window

NS = 1_000_000_000
H = 3600 * NS
MIN = 60 * NS
SAT = 1_767_398_400 * NS  # 2026-01-03T00:00:00Z, a Saturday
JULY_SAT = 1_783_123_200 * NS  # 2026-07-04T00:00:00Z, a Saturday (summer time in Europe)


@pytest.mark.parametrize(
    ("code", "day", "expected"),
    [
        (0, date(2026, 1, 4), True),  # Sunday = 0
        (0, date(2026, 1, 5), False),
        (1, date(2026, 1, 5), True),  # Monday
        (6, date(2026, 1, 3), True),  # Saturday
        (5, date(2026, 1, 3), False),
        (7, date(2026, 1, 3), True),  # every day
        (8, date(2026, 1, 2), True),  # weekdays: Friday yes
        (8, date(2026, 1, 3), False),  # Saturday no
        (9, date(2026, 1, 4), True),  # weekend: Sunday yes
        (9, date(2026, 1, 5), False),
        (10, date(2026, 2, 1), True),  # 10 and up: the first of the month
        (10, date(2026, 2, 2), False),
        (-1, date(2026, 1, 4), False),  # negative = disabled (Sunday's window switched off)
        (-8, date(2026, 1, 5), False),
    ],
)
def test_victron_day_codes(code: int, day: date, expected: bool) -> None:
    assert d.day_matches(code, day) is expected


def plan_at(snapshot: d.PlanSnapshot, ts_ns: list[int], step_ns: int = MIN, tz: str = "UTC") -> dict[str, list]:
    drivers = d.Drivers((snapshot,), (), tz)
    ts = np.array(ts_ns, dtype=np.int64)
    found = d.values(drivers, d.DRIVER_FEATURES, ts, step_ns, np.full(ts.size, snapshot.ts_ns))
    return {k: v.tolist() for k, v in found.items()}


def test_a_friday_window_crossing_midnight_runs_into_saturday_and_not_on_other_days() -> None:
    window = d.ChargeWindow(day=5, start_s=23 * 3600, duration_s=3 * 3600, soc_pct=80.0)
    snap = d.PlanSnapshot(SAT - 7 * 24 * H, windows=(window,))
    ts = [SAT - H - MIN, SAT - H, SAT + H, SAT + 2 * H - MIN, SAT + 2 * H, SAT + 23 * H + MIN]
    got = plan_at(snap, ts)
    assert got[d.PLAN_CHARGE_ACTIVE] == [0, 1, 1, 1, 0, 0]  # Fri 22:59, 23:00, Sat 01:00, 01:59, 02:00, Sat 23:01
    assert got[d.PLAN_TARGET_SOC][1:4] == [80.0, 80.0, 80.0] and np.isnan(got[d.PLAN_TARGET_SOC][4])


@pytest.mark.parametrize(
    ("day0", "snapshot_zone", "config_zone", "active_hour_utc"),
    [
        (SAT, None, "UTC", 2),
        (SAT, None, "Europe/Amsterdam", 1),  # CET = UTC+1: 02:00 local is 01:00 UTC
        (SAT, "Europe/Amsterdam", "UTC", 1),  # the GX's own zone wins over the config's
        (JULY_SAT, "Europe/Amsterdam", "UTC", 0),  # CEST = UTC+2
        (SAT, "America/New_York", "UTC", 7),
        (SAT, "Not/AZone", "UTC", 2),  # an unknown zone from the GX: the config's
    ],
)
def test_charge_windows_follow_the_gx_local_time(
    day0: int, snapshot_zone: str | None, config_zone: str, active_hour_utc: int
) -> None:
    window = d.ChargeWindow(day=7, start_s=2 * 3600, duration_s=3600, soc_pct=100.0)
    snap = d.PlanSnapshot(day0 - 24 * H, windows=(window,), time_zone=snapshot_zone)
    hours = [day0 + h * H for h in range(24)]
    active = plan_at(snap, hours, H, config_zone)[d.PLAN_CHARGE_ACTIVE]
    assert active == [1.0 if h == active_hour_utc else 0.0 for h in range(24)]


def test_dess_slots_are_absolute_unix_times_and_a_charge_raises_the_target() -> None:
    s0 = SAT // NS
    slots = (
        d.DessSlot(s0, 3600, 50.0),  # below the minimum SoC before it: not a charge
        d.DessSlot(s0 + 3600, 3600, 90.0),  # raises the target: a charge
        d.DessSlot(s0 + 7200, 3600, 90.0),  # holds it: not a charge
        d.DessSlot(0, 3600, 100.0),  # Start 0: unused
    )
    snap = d.PlanSnapshot(SAT - H, dess=slots, dess_mode=1, min_soc_pct=60.0)
    ts = [SAT - MIN, SAT, SAT + H, SAT + 2 * H, SAT + 3 * H]
    got = plan_at(snap, ts)
    assert got[d.PLAN_CHARGE_ACTIVE] == [0, 0, 1, 0, 0]
    assert got[d.PLAN_TARGET_SOC][1:4] == [50.0, 90.0, 90.0] and np.isnan(got[d.PLAN_TARGET_SOC][0])
    off = plan_at(d.PlanSnapshot(SAT - H, dess=slots, dess_mode=0), ts)  # Dynamic ESS off: schedule not followed
    assert off[d.PLAN_CHARGE_ACTIVE] == [0] * 5 and np.isnan(off[d.PLAN_TARGET_SOC]).all()


def test_a_step_partly_covered_by_a_charge_gets_the_covered_share() -> None:
    window = d.ChargeWindow(day=7, start_s=2 * 3600 + 5 * 60, duration_s=3600, soc_pct=90.0)
    got = plan_at(d.PlanSnapshot(SAT - H, windows=(window,)), [SAT + 2 * H, SAT + 3 * H], 15 * MIN)
    assert got[d.PLAN_CHARGE_ACTIVE] == pytest.approx([2 / 3, 1 / 3])


def test_no_plan_and_no_forecast_give_neutral_values_not_a_crash() -> None:
    ts = SAT + MIN * np.arange(5, dtype=np.int64)
    for drivers in (None, d.Drivers(), d.Drivers((d.PlanSnapshot(SAT + H),), ())):  # the plan comes later
        got = d.horizon(drivers, d.DRIVER_FEATURES, SAT, ts, MIN)
        assert (got[d.PLAN_CHARGE_ACTIVE] == 0).all()
        assert np.isnan(got[d.PLAN_TARGET_SOC]).all() and np.isnan(got[d.PV_FORECAST]).all()


def two_plans() -> d.Drivers:
    early = d.PlanSnapshot(SAT, windows=(d.ChargeWindow(7, 4 * 3600, 3600, 70.0),))
    late = d.PlanSnapshot(SAT + 3 * H, windows=(d.ChargeWindow(7, 5 * 3600, 3600, 95.0),))
    return d.Drivers((late, early), ())  # any order in, oldest first inside


def test_the_horizon_uses_the_plan_known_at_the_cutoff_and_never_a_later_one() -> None:
    drivers = two_plans()
    ts = SAT + 2 * H + H * np.arange(5, dtype=np.int64)  # 02:00 .. 06:00
    before = d.horizon(drivers, d.PLAN_FEATURES, SAT + 2 * H, ts, H)  # cut-off 02:00: only the early plan
    assert before[d.PLAN_CHARGE_ACTIVE].tolist() == [0, 0, 1, 0, 0] and np.nanmax(before[d.PLAN_TARGET_SOC]) == 70
    after = d.horizon(drivers, d.PLAN_FEATURES, SAT + 3 * H, ts, H)  # cut-off 03:00: the late plan is known
    assert after[d.PLAN_CHARGE_ACTIVE].tolist() == [0, 0, 0, 1, 0] and np.nanmax(after[d.PLAN_TARGET_SOC]) == 95


def test_the_history_holds_each_step_as_known_at_that_step() -> None:
    got = d.history(two_plans(), [d.PLAN_TARGET_SOC], SAT, H, 7)[d.PLAN_TARGET_SOC]
    # 04:00 was planned by the early plan but the late one (issued 03:00) replaced it; 05:00 is the late one's
    assert np.isnan(got[:5]).all() and got[5] == 95 and np.isnan(got[6])


def issue(ts_ns: int, first_ns: int, powers: list[float], period_s: int = 3600) -> d.PvIssue:
    n = len(powers)
    return d.PvIssue(
        ts_ns,
        "simulator",
        first_ns + period_s * NS * np.arange(n, dtype=np.int64),
        np.full(n, period_s, dtype=np.int64),
        np.array(powers, dtype=float),
    )


def test_pv_forecast_takes_the_newest_issue_known_at_the_cutoff_that_covers_the_step() -> None:
    old = issue(SAT, SAT, [100.0, 200.0, 300.0, 400.0])  # 00:00 .. 04:00
    new = issue(SAT + 2 * H, SAT + 2 * H, [250.0])  # 02:00 .. 03:00 only
    drivers = d.Drivers((), (new, old))
    ts = SAT + H * np.arange(5, dtype=np.int64)
    early = d.horizon(drivers, [d.PV_FORECAST], SAT + H, ts, H)[d.PV_FORECAST]
    assert early[:4].tolist() == [100.0, 200.0, 300.0, 400.0] and np.isnan(early[4])
    late = d.horizon(drivers, [d.PV_FORECAST], SAT + 2 * H, ts, H)[d.PV_FORECAST]
    assert late[:4].tolist() == [100.0, 200.0, 250.0, 400.0]  # the newer issue where it covers, else the older


def test_rows_from_influxdb_become_snapshots_and_issues() -> None:
    t = SAT
    rows = [
        {"time": t, "kind": "settings", "slot": "all", "dess_mode": 1, "min_soc_pct": 20.0, "time_zone": "UTC"},
        {"time": t, "kind": "dess", "slot": "0", "start_s": SAT // NS, "duration_s": 3600, "soc_pct": 80.0},
        {"time": t, "kind": "ess_charge", "slot": "0", "day": -7, "start_s": 0, "duration_s": 0, "soc_pct": 100.0},
        {"time": t, "kind": "ess_charge", "slot": "1", "day": 7, "start_s": 3600},  # incomplete: left out
        {"time": t + H, "kind": "settings", "slot": "all", "dess_mode": 0},
    ]
    first, second = d.snapshots_from_rows(rows)
    assert first.ts_ns == t and first.dess_mode == 1 and first.min_soc_pct == 20.0 and first.time_zone == "UTC"
    assert first.dess == (d.DessSlot(SAT // NS, 3600, 80.0),)
    assert first.windows == (d.ChargeWindow(-7, 0, 0, 100.0),)  # a disabled slot is kept (removal visible)
    assert second.ts_ns == t + H and second.dess == () and second.dess_mode == 0
    pv_rows = [
        {"time": t, "provider": "simulator", "step": "1", "target_ns": t + H, "period_s": 3600, "power_w": 2.0},
        {"time": t, "provider": "simulator", "step": "0", "target_ns": t, "period_s": 3600, "power_w": 1.0},
        {"time": t, "provider": "simulator", "step": "2", "target_ns": t + 2 * H, "period_s": 3600},  # no power
    ]
    (only,) = d.issues_from_rows(pv_rows)
    assert only.ts_ns == t and only.target_ns.tolist() == [t, t + H] and only.power_w.tolist() == [1.0, 2.0]


def test_a_window_gets_the_driver_covariates_as_known_at_its_cutoff_for_every_model() -> None:
    cutoff = SAT + 2 * H
    context = {"battery_power_w": np.zeros(60)}
    window = build_window(
        "t",
        cutoff,
        MIN,
        context,
        target="battery_power_w",
        past_covariates=[],
        known_covariates=["tod_sin", *d.DRIVER_FEATURES],
        horizon_steps=240,
        drivers=two_plans(),
    )
    active = window.future[d.PLAN_CHARGE_ACTIVE]  # the early plan's 04:00 window (the late plan is not known)
    assert active[120:180].tolist() == [1.0] * 60 and active.sum() == 60
    assert set(window.past) == set(window.future) == {"tod_sin", *d.DRIVER_FEATURES}
    assert len(window.past[d.PLAN_TARGET_SOC]) == 60  # the context's history, as known at each step
    names = feature_names(window)  # the gradient-boosting features carry them too (one definition)
    assert {f"{k}_at_h" for k in d.DRIVER_FEATURES} <= set(names)
