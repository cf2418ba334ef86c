"""The simulator's plan: forced charges happen exactly in the windows its published schedule runs, the GX
publishes that schedule as Venus does, and the backfill's gx_plan snapshots rebuild the plan known at any time."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bess_common.schema import GX_PLAN
from collector.simulator.history import NS, plan_samples
from collector.simulator.physics import FORCE, BessPhysics
from collector.simulator.plan_paths import settings_at
from collector.simulator.profiles import DAY_S
from collector.simulator.schedule import DESS_SLOTS, ISSUE_S, Schedule
from collector.simulator.truth import Truth

SEED = 7
DAY = 20_400  # 2025-11-08
DAYS = range(DAY, DAY + 14)
SUMMER = range(20_620, 20_634)  # June 2026: afternoon charges (cheap midday power) are a summer thing


@pytest.fixture(scope="module")
def physics() -> BessPhysics:
    return BessPhysics(SEED, cache_days=2)


def _window_mask(schedule: Schedule, day: int) -> np.ndarray:
    mask = np.zeros(DAY_S, dtype=bool)
    for w in schedule.executed(day):
        mask[w.start_s - day * DAY_S : w.end_s - day * DAY_S] = True
    return mask


def test_forced_charges_happen_exactly_in_the_scheduled_windows_and_stop_at_their_target(physics: BessPhysics) -> None:
    windows = 0
    for day in DAYS:
        pack = physics.pack_day(day)
        mask = _window_mask(physics.schedule, day)
        assert np.array_equal(pack.regime == FORCE, mask), day
        for w in physics.schedule.executed(day):
            windows += 1
            lo = w.start_s - day * DAY_S
            hi = w.end_s - day * DAY_S
            if pack.soc[lo] < w.soc_pct / 100 - 0.02:  # below target: it charges from the grid at once
                assert pack.current_a[lo : lo + 60].mean() > 30.0
            top = max(float(pack.soc[lo]), w.soc_pct / 100)  # above the target already: it holds (idles)
            assert pack.soc[lo:hi].max() <= top + 0.005  # a forced charge never goes beyond its target
    assert windows >= 8, "two weeks hold enough scheduled charges to test"


def test_the_plan_is_issued_daily_and_revisions_change_what_was_announced(physics: BessPhysics) -> None:
    schedule = physics.schedule
    changed = 0
    for day in SUMMER:
        announced = [w for w in schedule.issued(day - 1) if w.start_s >= day * DAY_S + ISSUE_S]
        ran = [w for w in schedule.executed(day) if w.start_s >= day * DAY_S + ISSUE_S]
        changed += announced != ran
        for w in schedule.issued(day):  # a plan covers from its issue to the end of the next day
            assert day * DAY_S + ISSUE_S <= w.start_s and w.end_s <= (day + 2) * DAY_S
    assert changed >= 1, "the day's own plan revises the afternoon announced the day before"


def test_the_gx_publishes_the_plan_in_force_and_the_dess_state_while_a_slot_runs(physics: BessPhysics) -> None:
    truth = Truth(physics, cache_days=1)
    day = next(d for d in DAYS if physics.schedule.executed(d))
    w = physics.schedule.executed(day)[0]
    for t in (w.start_s - 60, w.start_s + 60, day * DAY_S + ISSUE_S - 1, day * DAY_S + ISSUE_S):
        values = truth.values_at(t)
        published = {k: v for k, v in values.items() if k[0] == "settings" and "/DynamicEss/Schedule/" in k[1]}
        assert len(published) == DESS_SLOTS * 8
        assert {k: values[k] for k in settings_at(physics.schedule, t)} == settings_at(physics.schedule, t)
    inside, outside = truth.values_at(w.start_s + 60), truth.values_at(w.start_s - 60)
    assert inside[("system", "/DynamicEss/Active")] == 1 and outside[("system", "/DynamicEss/Active")] == 0
    assert inside[("system", "/DynamicEss/TargetSoc")] == w.soc_pct
    assert inside[("system", "/DynamicEss/ErrorCode")] == 0 and outside[("system", "/DynamicEss/ErrorCode")] == 3
    assert outside[("system", "/DynamicEss/Strategy")] is None  # invalid outside a slot, as systemcalc has it
    starts = [inside[("settings", f"/Settings/DynamicEss/Schedule/{n}/Start")] for n in range(DESS_SLOTS)]
    assert w.start_s in starts


def test_backfill_snapshots_rebuild_the_plan_known_at_any_moment(physics: BessPhysics) -> None:
    start_s, end_s = DAY * DAY_S + 3600, (DAY + 7) * DAY_S
    samples = list(plan_samples(physics, start_s * NS, end_s * NS, site="lab"))
    assert {s.measurement for s in samples} == {GX_PLAN}
    stamps = sorted({s.ts_ns // NS for s in samples})
    assert stamps[0] == start_s  # the collector "starting" at the first second
    assert all(t % DAY_S == ISSUE_S for t in stamps[1:])  # then only when a new plan is issued
    assert len(stamps) >= 4
    for t in (start_s, start_s + 5 * 3600, (DAY + 2) * DAY_S + ISSUE_S - 1, (DAY + 2) * DAY_S + ISSUE_S, end_s - 1):
        as_of = max(s for s in stamps if s <= t)
        points = {(s.tags["kind"], s.tags["slot"]): s.fields for s in samples if s.ts_ns == as_of * NS}
        assert len([k for k in points if k[0] == "dess"]) == DESS_SLOTS  # every slot, used or not
        planned = sorted(
            (int(f["start_s"]), float(f["soc_pct"])) for k, f in points.items() if k[0] == "dess" and f["start_s"]
        )
        assert planned == [(w.start_s, w.soc_pct) for w in physics.schedule.plan_at(t)]

    def used(t_s: int) -> set[str]:
        return {
            s.tags["slot"] for s in samples if s.ts_ns == t_s * NS and s.tags["kind"] == "dess" and s.fields["start_s"]
        }

    removed = [t for prev, t in itertools.pairwise(stamps) if used(prev) - used(t)]
    assert removed, "a slot in use becomes unused (Start 0) in a later snapshot"
