"""The GX's plan (collector/gx/plan.csv, collector/plan.py): which paths are part of it, how a snapshot is
built, and when the tracker writes one."""

from __future__ import annotations

import pytest

from bess_common.sample import FieldValue, Sample
from bess_common.schema import GX_PLAN
from collector.gx import tables
from collector.gx.tables import field_for, plan_field_for, plan_specs, stored
from collector.observation import Invalid, Observation
from collector.plan import PlanTracker, snapshot_samples

TS = 1_762_603_200_000_000_000
DESS = "/Settings/DynamicEss/Schedule"
CHARGE = "/Settings/CGwacs/BatteryLife/Schedule/Charge"


@pytest.mark.parametrize(
    ("path", "kind", "slot", "field", "type_"),
    [
        (f"{DESS}/0/Start", "dess", "0", "start_s", "int"),
        (f"{DESS}/47/Duration", "dess", "47", "duration_s", "int"),  # 48 slots (dbus-systemcalc-py)
        (f"{DESS}/3/Soc", "dess", "3", "soc_pct", "float"),
        (f"{DESS}/3/TargetSoc", "dess", "3", "soc_pct", "float"),
        (f"{DESS}/12/Strategy", "dess", "12", "strategy", "int"),
        (f"{DESS}/12/AllowGridFeedIn", "dess", "12", "allow_grid_feed_in", "int"),
        (f"{DESS}/12/Restrictions", "dess", "12", "restrictions", "int"),
        (f"{DESS}/12/Flags", "dess", "12", "flags", "int"),
        (f"{CHARGE}/4/Day", "ess_charge", "4", "day", "int"),
        (f"{CHARGE}/0/Start", "ess_charge", "0", "start_s", "int"),
        (f"{CHARGE}/0/Duration", "ess_charge", "0", "duration_s", "int"),
        (f"{CHARGE}/0/Soc", "ess_charge", "0", "soc_pct", "float"),
        (f"{CHARGE}/0/AllowDischarge", "ess_charge", "0", "allow_discharge", "int"),
        ("/Settings/DynamicEss/Mode", "settings", "all", "dess_mode", "int"),
        ("/Settings/CGwacs/Hub4Mode", "settings", "all", "ess_mode", "int"),
        ("/Settings/CGwacs/BatteryLife/MinimumSocLimit", "settings", "all", "min_soc_pct", "float"),
        ("/Settings/System/TimeZone", "settings", "all", "time_zone", "str"),
    ],
)
def test_each_plan_path_maps_to_its_kind_slot_and_field(
    path: str, kind: str, slot: str, field: str, type_: str
) -> None:
    found = plan_field_for("settings", path)
    assert found is not None
    spec, got_slot = found
    assert (spec.kind, got_slot, spec.field, spec.type) == (kind, slot, field, type_)
    assert stored("settings", path)  # so the MQTT source hands it over as an observation, not to gx_topic


@pytest.mark.parametrize(
    "path",
    [
        f"{DESS}/x/Start",  # not a slot number
        "/Settings/DynamicEss/BatteryCapacity",  # a DESS setting, not the plan
        "/Settings/CGwacs/BatteryLife/State",  # the live ESS state: a 1 Hz field, not the plan
        f"{CHARGE}/0/Start/Extra",
    ],
)
def test_other_paths_are_not_part_of_the_plan(path: str) -> None:
    assert plan_field_for("settings", path) is None


def test_the_minimum_soc_is_both_a_1hz_field_and_part_of_the_plan() -> None:
    assert field_for("settings", "/Settings/CGwacs/BatteryLife/MinimumSocLimit") is not None
    assert plan_field_for("settings", "/Settings/CGwacs/BatteryLife/MinimumSocLimit") is not None


def test_every_dess_and_ess_charge_field_of_the_contract_is_in_the_table() -> None:
    fields = {(s.kind, s.field) for s in plan_specs()}
    assert {("dess", f) for f in ("start_s", "duration_s", "soc_pct", "strategy", "allow_grid_feed_in")} <= fields
    assert {("ess_charge", f) for f in ("day", "start_s", "duration_s", "soc_pct", "allow_discharge")} <= fields
    assert {("settings", f) for f in ("dess_mode", "ess_mode", "min_soc_pct", "time_zone")} <= fields


def _slot(n: int, start: int, soc: float, target: float, duration: int = 3600) -> dict[tuple[str, str], object]:
    return {
        ("settings", f"{DESS}/{n}/Start"): start,
        ("settings", f"{DESS}/{n}/Duration"): duration,
        ("settings", f"{DESS}/{n}/Soc"): soc,
        ("settings", f"{DESS}/{n}/TargetSoc"): target,
        ("settings", f"{DESS}/{n}/Strategy"): 0,
    }


def _points(samples: list[Sample]) -> dict[tuple[str, str], dict[str, FieldValue]]:
    return {(s.tags["kind"], s.tags["slot"]): s.fields for s in samples}


def test_a_snapshot_has_one_point_per_slot_all_at_one_timestamp_with_victrons_target_soc_rule() -> None:
    values = {
        **_slot(0, 1_762_655_400, 95, 95.5),  # TargetSoc > 0: the GX runs to 95.5 %
        **_slot(1, 1_762_704_900, 80, 0.0),  # TargetSoc 0 (its default): the legacy Soc, 80 %
        **_slot(10, 0, 0, 0.0, duration=0),  # unused (Start 0) but written, so a removal shows
        ("settings", f"{CHARGE}/0/Day"): -8,
        ("settings", f"{CHARGE}/0/Start"): 7200.0,  # MQTT may give a whole number as a float
        ("settings", "/Settings/System/TimeZone"): "Europe/Amsterdam",
        ("settings", "/Settings/DynamicEss/Mode"): Invalid.NULL,  # invalid: left out
        ("settings", "/Settings/CGwacs/Hub4Mode"): 1,
        ("system", "/Dc/Battery/Soc"): 50.0,  # not the plan: ignored
    }
    samples = snapshot_samples(values, TS, "shop")  # type: ignore[arg-type]
    assert {s.measurement for s in samples} == {GX_PLAN}
    assert {s.ts_ns for s in samples} == {TS}
    assert [(s.tags["kind"], s.tags["slot"]) for s in samples] == [
        ("dess", "0"),
        ("dess", "1"),
        ("dess", "10"),
        ("ess_charge", "0"),
        ("settings", "all"),
    ]
    points = _points(samples)
    assert points[("dess", "0")] == {"start_s": 1_762_655_400, "duration_s": 3600, "soc_pct": 95.5, "strategy": 0}
    assert points[("dess", "1")]["soc_pct"] == 80.0
    assert points[("dess", "10")]["start_s"] == 0
    assert points[("ess_charge", "0")] == {"day": -8, "start_s": 7200}
    assert isinstance(points[("ess_charge", "0")]["start_s"], int)
    assert points[("settings", "all")] == {"time_zone": "Europe/Amsterdam", "ess_mode": 1}
    assert samples[0].tags["site"] == "shop"


def _obs(path: str, value: object, mono_s: float, source: str = "mqtt") -> Observation:
    return Observation("settings", path, value, source, mono_s)  # type: ignore[arg-type]


def test_the_tracker_writes_once_the_plan_is_still_and_again_on_each_change_with_a_removed_slot_visible() -> None:
    tracker = PlanTracker("shop", settle_s=2.0)
    assert tracker.drain(TS, 0.0) == []  # nothing known yet
    tracker.observe([_obs(f"{DESS}/0/Start", 1000, 10.0), _obs(f"{DESS}/1/Start", 5000, 10.0)])
    tracker.observe([_obs(f"{DESS}/1/Duration", 900, 11.0)])  # the same burst
    assert tracker.drain(TS, 12.5) == []  # still settling: 1.5 s since the last change
    first = tracker.drain(TS + 3, 13.0)
    assert _points(first) == {("dess", "0"): {"start_s": 1000}, ("dess", "1"): {"start_s": 5000, "duration_s": 900}}
    assert {s.ts_ns for s in first} == {TS + 3}
    tracker.observe([_obs(f"{DESS}/0/Start", 1000, 20.0)])  # republished unchanged
    assert tracker.drain(TS + 30, 30.0) == []
    tracker.observe([_obs(f"{DESS}/1/Start", 0, 40.0)])  # slot 1 removed
    second = tracker.drain(TS + 50, 50.0)
    assert _points(second)[("dess", "1")] == {"start_s": 0, "duration_s": 900}
    assert _points(second)[("dess", "0")] == {"start_s": 1000}  # every slot, not only the changed one
    assert tracker.snapshots == 2


def test_the_tracker_prefers_mqtt_so_a_rounded_modbus_reading_never_makes_a_snapshot() -> None:
    tracker = PlanTracker("shop", settle_s=0.0)
    tracker.observe([_obs(f"{DESS}/0/Duration", 70_000, 1.0)])
    assert tracker.drain(TS, 1.0)
    tracker.observe([_obs(f"{DESS}/0/Duration", 65_535, 2.0, "modbus")])  # uint16 register capped
    assert tracker.drain(TS + 1, 3.0) == []
    only_modbus = PlanTracker("shop", settle_s=0.0)
    only_modbus.observe([_obs(f"{DESS}/0/Soc", 80, 1.0, "modbus")])
    assert _points(only_modbus.drain(TS, 1.0)) == {("dess", "0"): {"soc_pct": 80.0}}


def test_a_snapshot_lost_to_the_buffer_is_written_at_the_next_drain() -> None:
    tracker = PlanTracker("shop", settle_s=2.0)
    tracker.observe([_obs("/Settings/DynamicEss/Mode", 1, 1.0)])
    assert tracker.drain(TS, 5.0)
    tracker.retry()
    assert _points(tracker.drain(TS + 1, 5.1)) == {("settings", "all"): {"dess_mode": 1}}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"kind": "dynamic"}, "unknown kind"),
        ({"type": "bool"}, "unknown type"),
        ({"role": "tank"}, "unknown role"),
        ({"rule": "sometimes"}, "unknown rule"),
        ({"path": "/Settings/DynamicEss/Mode"}, "slots"),  # a dess row without {n}
    ],
)
def test_a_bad_plan_table_row_fails_at_load(monkeypatch: pytest.MonkeyPatch, row: dict[str, str], problem: str) -> None:
    good = {"role": "settings", "path": f"{DESS}/{{n}}/Start", "kind": "dess", "field": "start_s", "type": "int"}
    monkeypatch.setattr(tables, "_rows", lambda name: [{**good, "rule": "", **row}])
    tables.plan_specs.cache_clear()
    try:
        with pytest.raises(ValueError, match=problem):
            tables.plan_specs()
    finally:
        monkeypatch.undo()
        tables.plan_specs.cache_clear()


@pytest.mark.parametrize(
    ("path", "value", "stored_as"),
    [
        (f"{DESS}/0/Start", 1_762_603_200, 1_762_603_200),  # int
        (f"{DESS}/0/Duration", 899.6, 900),  # int: rounded, as the grid does
        (f"{DESS}/0/Soc", 50, 50.0),  # float
        ("/Settings/System/TimeZone", "Europe/Amsterdam", "Europe/Amsterdam"),  # str
        (f"{DESS}/0/Start", Invalid.NULL, None),  # the GX's null: no plan value
        (f"{DESS}/0/Start", None, None),
        # wrong types: the MQTT source sets these aside as garbage_wrong_type (counted, logged) before
        # they reach the plan; here they are a guard, never written as something else
        ("/Settings/System/TimeZone", 3600, None),
        (f"{DESS}/0/Soc", "80", None),
        (f"{DESS}/0/Flags", True, None),
    ],
)
def test_a_plan_value_is_stored_as_its_table_type_and_anything_else_is_not_stored(
    path: str, value: float | int | str | Invalid | None, stored_as: FieldValue | None
) -> None:
    found = plan_field_for("settings", path)
    assert found is not None
    spec, slot = found
    points = {s.tags["slot"]: s.fields for s in snapshot_samples({("settings", path): value}, TS, "shop")}
    if stored_as is None:
        assert points == {}
    else:
        assert points == {slot: {spec.field: stored_as}}
        assert type(points[slot][spec.field]) is type(stored_as)
