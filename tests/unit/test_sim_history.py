"""Simulated history rows: the collector's schema, on the step grid, equal to the truth."""

from __future__ import annotations

import pytest

from bess_common.schema import AGE_FIELD, STALE_FIELD
from collector.gx.tables import fields
from collector.simulator.history import history_samples
from collector.simulator.physics import BessPhysics
from collector.simulator.profiles import DAY_S
from collector.simulator.truth import Truth

NS = 10**9
T0 = 20_401 * DAY_S + 12 * 3600  # midday of a cycling day for seed 7


@pytest.fixture(scope="module")
def physics() -> BessPhysics:
    return BessPhysics(7)


def test_when_generating_then_rows_follow_the_schema(physics: BessPhysics) -> None:
    rows = list(history_samples(physics, T0 * NS, (T0 + 3) * NS, site="lab"))
    assert len(rows) == 3 * (2 + 16 + 1 + 4)  # + the Multi, two MPPTs and the grid meter
    known = {(f.measurement, f.field) for f in fields()}
    for row in rows:
        assert row.tags["site"] == "lab"
        assert row.ts_ns % NS == 0
        assert row.fields[AGE_FIELD] == 0.0
        for name in row.fields:
            assert (row.measurement, name) in known or name in (AGE_FIELD, STALE_FIELD, "pv_w", "load_w", "grid_w")
    first = rows[:23]
    devices = [(r.measurement, r.tags.get("device"), r.tags.get("instance")) for r in first[18:22]]
    assert devices == [
        ("inverter", "vebus", "276"),
        ("meter", "grid", "30"),
        ("solarcharger", None, "279"),
        ("solarcharger", None, "280"),
    ]
    assert [(r.measurement, r.tags.get("device"), r.tags.get("cell")) for r in first[:3]] == [
        ("battery", "bms", None),
        ("battery", "shunt", None),
        ("cell", "bms", "1"),
    ]
    system = first[-1]
    assert system.tags == {"site": "lab"}
    assert system.fields["load_w"] == system.fields["load_l1_w"]
    # The simulated GX is single-phase with DC-coupled PV and no DC charger: these are null at it, left out
    # and counted. Outside a Dynamic ESS slot (midday here) its strategy, restrictions, feed-in and charge
    # rate are null too: left out but not counted (null_ok in fields.csv: no slot runs, no fault).
    faults = {"load_l2_w", "load_l3_w", "grid_l2_w", "grid_l3_w", "charger_power_w"}
    faults |= {f"pv_ac_{where}_l{n}_w" for where in ("grid", "output") for n in (1, 2, 3)}
    idle = {"dess_strategy", "dess_restrictions", "dess_allow_grid_feed_in", "dess_charge_rate_w"}
    assert not (faults | idle) & set(system.fields)
    assert system.fields["dess_active"] == 0
    assert system.fields[STALE_FIELD] == len(faults)
    assert isinstance(first[0].fields["balancing"], int)
    assert isinstance(first[0].fields["voltage_v"], float)


def test_when_sampled_then_values_equal_the_truth(physics: BessPhysics) -> None:
    truth = Truth(physics)
    rows = list(history_samples(physics, T0 * NS, (T0 + 2) * NS))
    v = truth.values_at(T0 + 1)
    second = [r for r in rows if r.ts_ns == (T0 + 1) * NS]
    shunt = next(r for r in second if r.tags.get("device") == "shunt" and r.measurement == "battery")
    cell3 = next(r for r in second if r.tags.get("cell") == "3")
    assert shunt.fields["voltage_v"] == v[("shunt", "/Dc/0/Voltage")]
    assert shunt.fields["consumed_ah"] == v[("shunt", "/ConsumedAmphours")]
    assert cell3.fields["voltage_v"] == v[("bms", "/Voltages/Cell3")]
    assert cell3.fields["balancing"] == v[("bms", "/Balances/Cell3")]
    assert "temperature_c" not in cell3.fields  # dbus-serialbattery has no per-cell temperature
    bms = next(r for r in second if r.tags.get("device") == "bms" and r.measurement == "battery")
    assert bms.fields["temperature_1_c"] == v[("bms", "/System/Temperature1")]
    assert bms.fields["mos_temperature_c"] == v[("bms", "/System/MOSTemperature")]


def test_when_the_bms_is_a_lynx_smart_bms_ng_then_cells_carry_their_battery_and_one_battery_its_temperatures(
    physics: BessPhysics,
) -> None:
    rows = list(history_samples(physics, T0 * NS, (T0 + 1) * NS, bms="lynx-ng"))
    cells = {(r.tags["battery"], r.tags["cell"]): r.fields for r in rows if r.measurement == "cell"}
    assert sorted(cells) == [(str(b), str(n)) for b in range(1, 5) for n in range(1, 5)]
    v = Truth(physics, bms="lynx-ng").values_at(T0)
    assert cells[("3", "2")]["voltage_v"] == v[("bms", "/Battery/3/Cell/2/Voltage")]
    assert {key for key, f in cells.items() if "temperature_c" in f} == {("1", str(n)) for n in range(1, 5)}
    assert cells[("1", "4")]["temperature_c"] == v[("bms", "/Battery/1/Cell/4/Temperature")]


def test_when_the_bms_is_on_can_bus_then_no_cell_rows_only_min_max(physics: BessPhysics) -> None:
    rows = list(history_samples(physics, T0 * NS, (T0 + 1) * NS, bms="can"))
    assert not [r for r in rows if r.measurement == "cell"]
    bms = next(r for r in rows if r.tags.get("device") == "bms")
    assert {"min_cell_voltage_v", "max_cell_voltage_v", "min_cell_temperature_c", "max_cell_temperature_c"} <= set(
        bms.fields
    )


def test_when_stepping_then_rows_sit_on_multiples_of_the_step(physics: BessPhysics) -> None:
    rows = list(history_samples(physics, (T0 + 1) * NS + 5, (T0 + 61) * NS, step_s=15))
    stamps = sorted({r.ts_ns // NS for r in rows})
    assert stamps == [T0 + 15, T0 + 30, T0 + 45, T0 + 60]


def test_when_crossing_midnight_then_rows_continue(physics: BessPhysics) -> None:
    midnight = 20_402 * DAY_S
    rows = list(history_samples(physics, (midnight - 2) * NS, (midnight + 2) * NS))
    assert sorted({r.ts_ns // NS for r in rows}) == [midnight - 2, midnight - 1, midnight, midnight + 1]
