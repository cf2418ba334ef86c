"""The 1 Hz grid rules: ages, TTL edges, source priority, null, gone, confirm, rows and cells."""

from __future__ import annotations

import pytest

from bess_common.sample import Sample
from collector.grid import Grid
from collector.observation import Confirm, DeviceGone, Invalid, Observation

TTL = {"shunt": 8.0, "cell": 10.0, "system": 8.0}
TS = 1_700_000_000_000_000_000


def obs(role: str, path: str, value: object, source: str = "mqtt", t: float = 100.0) -> Observation:
    return Observation(role, path, value, source, t)  # type: ignore[arg-type]


def row(samples: list[Sample], measurement: str, **tags: str) -> Sample | None:
    for s in samples:
        if s.measurement == measurement and all(s.tags.get(k) == v for k, v in tags.items()):
            return s
    return None


def shunt_row(grid: Grid, now: float) -> Sample:
    found = row(grid.snapshot(TS, now), "battery", device="shunt")
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("now", "fresh"),
    [(100.0, True), (104.0, True), (108.0, True), (108.001, False), (200.0, False)],
)
def test_when_value_ages_then_written_only_within_ttl(now: float, fresh: bool) -> None:
    grid = Grid("shop", TTL)
    grid.apply([obs("shunt", "/Dc/0/Voltage", 53.27, t=100.0)])
    sample = shunt_row(grid, now)
    if fresh:
        assert sample.fields["voltage_v"] == 53.27
        assert sample.fields["age_s"] == pytest.approx(now - 100.0)
        assert sample.fields["stale_fields"] == 0
    else:
        assert sample.fields == {"stale_fields": 1}


def test_when_cell_ttl_differs_then_each_field_uses_its_class() -> None:
    grid = Grid("shop", TTL)
    grid.apply([obs("bms", "/Voltages/Cell1", 3.301, t=100.0), obs("bms", "/Dc/0/Voltage", 52.8, t=100.0)])
    samples = grid.snapshot(TS, 109.0)  # 9 s: stale for the shunt class (8), fresh for cells (10)
    cell = row(samples, "cell", cell="1")
    battery = row(samples, "battery", device="bms")
    assert cell is not None and cell.fields["voltage_v"] == 3.301
    assert battery is not None and "voltage_v" not in battery.fields and battery.fields["stale_fields"] == 1


def test_when_both_sources_fresh_then_mqtt_wins() -> None:
    grid = Grid("shop", TTL)
    grid.apply(
        [obs("shunt", "/Dc/0/Current", -12.345, "mqtt", 100.0), obs("shunt", "/Dc/0/Current", -12.3, "modbus", 101.0)]
    )
    assert shunt_row(grid, 101.5).fields["current_a"] == -12.345


def test_when_mqtt_stale_and_modbus_fresh_then_modbus_used_with_its_age() -> None:
    grid = Grid("shop", TTL)
    grid.apply(
        [obs("shunt", "/Dc/0/Current", -12.345, "mqtt", 100.0), obs("shunt", "/Dc/0/Current", -12.3, "modbus", 109.0)]
    )
    sample = shunt_row(grid, 109.5)
    assert sample.fields["current_a"] == -12.3
    assert sample.fields["age_s"] == pytest.approx(0.5)
    assert sample.fields["stale_fields"] == 0


def test_when_mqtt_says_null_then_fresh_modbus_zero_is_not_written() -> None:
    grid = Grid("shop", TTL)
    grid.apply(
        [
            obs("shunt", "/Dc/0/Temperature", Invalid.NULL, "mqtt", 100.0),
            obs("shunt", "/Dc/0/Temperature", 0.0, "modbus", 100.5),
        ]
    )
    sample = shunt_row(grid, 101.0)
    assert "temperature_c" not in sample.fields
    assert sample.fields["stale_fields"] == 1


def test_when_null_arrives_then_previous_value_is_not_held() -> None:
    grid = Grid("shop", TTL)
    grid.apply([obs("shunt", "/Soc", 80.5, t=100.0), obs("shunt", "/Soc", Invalid.NULL, t=101.0)])
    sample = shunt_row(grid, 101.5)
    assert "soc_pct" not in sample.fields and sample.fields["stale_fields"] == 1


@pytest.mark.parametrize(
    ("path", "field", "now", "stale"),
    [
        ("/Dc/Charger/Power", "charger_power_w", 101.0, 1),  # null there is a fault: counted
        ("/DynamicEss/Strategy", "dess_strategy", 101.0, 0),  # null_ok: no Dynamic ESS slot runs
        ("/DynamicEss/ChargeRate", "dess_charge_rate_w", 101.0, 0),
        ("/DynamicEss/Strategy", "dess_strategy", 109.0, 1),  # ... but a stale null still counts
    ],
)
def test_when_the_gx_says_null_then_left_out_and_counted_unless_null_is_a_state(
    path: str, field: str, now: float, stale: int
) -> None:
    grid = Grid("shop", TTL)
    grid.apply(
        [
            obs("system", "/DynamicEss/Active", 0, t=now),
            obs("system", path, 2, "modbus", t=100.0),
            obs("system", path, Invalid.NULL, t=100.5),
        ]
    )
    sample = row(grid.snapshot(TS, now), "system")
    assert sample is not None and sample.fields["dess_active"] == 0
    assert field not in sample.fields and sample.fields["stale_fields"] == stale


def test_when_device_gone_then_its_values_drop_at_once_but_other_source_stays() -> None:
    grid = Grid("shop", TTL)
    grid.apply(
        [
            obs("shunt", "/Dc/0/Voltage", 53.2, "mqtt", 100.0),
            obs("shunt", "/Soc", 80.0, "mqtt", 100.0),
            obs("shunt", "/Soc", 80.0, "modbus", 100.0),
        ]
    )
    grid.apply([DeviceGone("shunt", "mqtt", 100.5)])
    sample = shunt_row(grid, 101.0)
    assert "voltage_v" not in sample.fields
    assert sample.fields["soc_pct"] == 80.0  # from Modbus, still fresh
    assert sample.fields["stale_fields"] == 1


def test_when_device_gone_then_confirm_does_not_revive_it_but_new_value_does() -> None:
    grid = Grid("shop", TTL)
    grid.apply(
        [obs("shunt", "/Dc/0/Voltage", 53.2, t=100.0), DeviceGone("shunt", "mqtt", 101.0), Confirm("mqtt", 102.0)]
    )
    assert "voltage_v" not in shunt_row(grid, 102.0).fields
    grid.apply([obs("shunt", "/Dc/0/Voltage", 53.4, t=103.0)])
    assert shunt_row(grid, 103.0).fields["voltage_v"] == 53.4


def test_when_confirmed_then_unchanged_value_stays_fresh_with_age_from_confirm() -> None:
    grid = Grid("shop", TTL)
    grid.apply([obs("shunt", "/Dc/0/Voltage", 53.2, t=100.0)])
    for t in (103.0, 106.0, 109.0, 112.0):
        grid.apply([Confirm("mqtt", t)])
    sample = shunt_row(grid, 113.0)  # 13 s after the message, 1 s after the last heartbeat
    assert sample.fields["voltage_v"] == 53.2
    assert sample.fields["age_s"] == pytest.approx(1.0)


def test_when_confirm_is_of_other_source_or_role_then_no_effect() -> None:
    grid = Grid("shop", TTL)
    grid.apply(
        [
            obs("shunt", "/Dc/0/Voltage", 53.2, "modbus", 100.0),
            obs("shunt", "/Soc", 50.0, "mqtt", 100.0),
            Confirm("mqtt", 107.0, roles=("system", "bms")),
        ]
    )
    grid.apply([Confirm("mqtt", 107.0, roles=("system",)), Confirm("modbus", 90.0)])
    assert shunt_row(grid, 109.0).fields == {"stale_fields": 2}


def test_when_confirm_is_older_than_value_then_age_not_increased() -> None:
    grid = Grid("shop", TTL)
    grid.apply([obs("shunt", "/Dc/0/Voltage", 53.2, t=100.0), Confirm("mqtt", 95.0)])
    assert shunt_row(grid, 101.0).fields["age_s"] == pytest.approx(1.0)


def test_when_row_has_several_fields_then_age_is_the_oldest_included() -> None:
    grid = Grid("shop", TTL)
    grid.apply(
        [
            obs("shunt", "/Dc/0/Voltage", 53.2, t=100.0),
            obs("shunt", "/Soc", 80.0, t=103.0),
            obs("shunt", "/Dc/0/Current", 1.0, t=90.0),
        ]
    )
    sample = shunt_row(grid, 104.0)
    assert sample.fields["age_s"] == pytest.approx(4.0)
    assert sample.fields["stale_fields"] == 1  # the current, 14 s old


def test_when_kinds_differ_then_field_types_follow_the_map() -> None:
    grid = Grid("shop", TTL)
    grid.apply(
        [
            obs("bms", "/Io/AllowToCharge", 1, t=100.0),
            obs("bms", "/System/NrOfCellsPerBattery", 16.0, t=100.0),
            obs("bms", "/Soc", 77, t=100.0),
        ]
    )
    sample = row(grid.snapshot(TS, 100.0), "battery", device="bms")
    assert sample is not None
    assert sample.fields["allow_to_charge"] == 1 and type(sample.fields["allow_to_charge"]) is int
    assert type(sample.fields["cells_per_battery"]) is int
    assert sample.fields["soc_pct"] == 77.0 and type(sample.fields["soc_pct"]) is float


def test_when_cells_seen_then_one_row_per_cell_only_for_cells_seen() -> None:
    grid = Grid("shop", TTL)
    grid.apply([obs("bms", f"/Voltages/Cell{n}", 3.3 + n / 1000, t=100.0) for n in (1, 2, 3)])
    grid.apply([obs("bms", "/Balances/Cell2", 1, t=100.0), obs("bms", "/System/NrOfCellsPerBattery", 16, t=100.0)])
    samples = grid.snapshot(TS, 100.5)
    cells = sorted((s for s in samples if s.measurement == "cell"), key=lambda s: int(s.tags["cell"]))
    assert [s.tags for s in cells] == [{"site": "shop", "device": "bms", "cell": str(n)} for n in (1, 2, 3)]
    assert cells[1].fields["voltage_v"] == pytest.approx(3.302) and cells[1].fields["balancing"] == 1
    assert grid.cell_count() == 3


def test_when_cell_path_variant_used_then_same_cell_field() -> None:
    grid = Grid("shop", TTL)
    grid.apply([obs("bms", "/Cell/7/Volts", 3.401, t=100.0)])
    cell = row(grid.snapshot(TS, 100.0), "cell", cell="7")
    assert cell is not None and cell.fields["voltage_v"] == 3.401


def test_when_system_values_fresh_then_totals_derived_from_fresh_phases_only() -> None:
    grid = Grid("shop", TTL)
    grid.apply(
        [
            obs("system", "/Ac/Consumption/L1/Power", 500, "modbus", 100.0),
            obs("system", "/Ac/Consumption/L2/Power", 700, "modbus", 90.0),
            obs("system", "/Dc/Pv/Power", 1200, "modbus", 100.0),
            obs("settings", "/Settings/CGwacs/BatteryLife/State", 10, "modbus", 100.0),
        ]
    )
    sample = row(grid.snapshot(TS, 100.0), "system")
    assert sample is not None
    assert sample.tags == {"site": "shop"}
    assert sample.fields["load_w"] == 500.0
    assert sample.fields["pv_w"] == 1200.0
    assert sample.fields["ess_batterylife_state"] == 10
    assert sample.fields["stale_fields"] == 1


def test_when_unmapped_path_observed_then_nothing_written() -> None:
    grid = Grid("shop", TTL)
    grid.apply([obs("shunt", "/ProductName", "Lynx Shunt", t=100.0), obs("shunt", "/Foo", 1.0, t=100.0)])
    assert grid.snapshot(TS, 100.0) == []


def test_when_value_is_not_a_number_then_not_written() -> None:
    grid = Grid("shop", TTL)
    grid.apply([obs("shunt", "/Dc/0/Voltage", "53.2", t=100.0), obs("shunt", "/Soc", float("nan"), t=100.0)])
    assert shunt_row(grid, 100.0).fields == {"stale_fields": 2}


def test_when_snapshot_taken_then_timestamp_and_tags_are_set() -> None:
    grid = Grid("garage", TTL)
    grid.apply([obs("shunt", "/Dc/0/Voltage", 53.2, t=100.0)])
    sample = shunt_row(grid, 100.0)
    assert sample.ts_ns == TS
    assert sample.tags == {"site": "garage", "device": "shunt"}


def test_when_two_instances_of_a_device_report_then_each_has_its_row_and_goes_alone() -> None:
    grid = Grid("shop", TTL)
    grid.apply(
        [
            Observation("solarcharger", "/Yield/Power", 300.0, "mqtt", 100.0, 279),
            Observation("solarcharger", "/Yield/Power", 200.0, "mqtt", 100.0, 280),
            Observation("vebus", "/Ac/Out/L1/P", 1500.0, "mqtt", 100.0, 276),
            Observation("grid", "/Ac/L1/Power", 900.0, "mqtt", 100.0, 30),
        ]
    )
    rows = grid.snapshot(TS, 101.0)
    mppt1, mppt2 = row(rows, "solarcharger", instance="279"), row(rows, "solarcharger", instance="280")
    assert mppt1 is not None and mppt1.fields["pv_w"] == 300.0 and mppt1.tags == {"site": "shop", "instance": "279"}
    assert mppt2 is not None and mppt2.fields["pv_w"] == 200.0
    inverter = row(rows, "inverter")
    assert inverter is not None and inverter.tags == {"site": "shop", "device": "vebus", "instance": "276"}
    meter = row(rows, "meter")
    assert meter is not None and meter.tags == {"site": "shop", "device": "grid", "instance": "30"}
    grid.apply([DeviceGone("solarcharger", "mqtt", 101.5, 280)])  # one charger leaves: the other stays
    rows = grid.snapshot(TS + 10**9, 102.0)
    assert row(rows, "solarcharger", instance="279").fields["pv_w"] == 300.0  # type: ignore[union-attr]
    assert "pv_w" not in row(rows, "solarcharger", instance="280").fields  # type: ignore[union-attr]
