"""The topic map (collector/gx/fields.csv) stores every real per-cell path and the operator's extras, and
no invented path: a value observed on a GX path lands in the grid row and field the schema documents."""

from __future__ import annotations

import pytest

from collector.grid import Grid
from collector.gx import tables
from collector.gx.tables import field_for, register_by_path
from collector.observation import Observation

TTL = {"shunt": 8.0, "cell": 10.0, "system": 8.0}
TS = 1_700_000_000_000_000_000


def landed(role: str, path: str, value: float) -> list[tuple[str, dict[str, str], dict[str, object]]]:
    grid = Grid("shop", TTL)
    grid.apply([Observation(role, path, value, "mqtt", 100.0)])  # type: ignore[arg-type]
    return [(s.measurement, s.tags, dict(s.fields)) for s in grid.snapshot(TS, 100.5)]


@pytest.mark.parametrize(
    ("path", "tags", "field"),
    [
        ("/Voltages/Cell7", {"cell": "7"}, "voltage_v"),  # dbus-serialbattery, BATTERY_CELL_DATA_FORMAT 1
        ("/Cell/7/Volts", {"cell": "7"}, "voltage_v"),  # formats 2 and 3
        ("/Balances/Cell7", {"cell": "7"}, "balancing"),  # formats 1 and 3
        ("/Battery/3/Cell/2/Voltage", {"battery": "3", "cell": "2"}, "voltage_v"),  # Lynx Smart BMS NG
        ("/Battery/3/Cell/2/Temperature", {"battery": "3", "cell": "2"}, "temperature_c"),
    ],
)
def test_when_a_bms_publishes_a_per_cell_path_then_it_lands_in_that_cells_row(
    path: str, tags: dict[str, str], field: str
) -> None:
    rows = landed("bms", path, 1.0)
    [(measurement, got_tags, fields)] = rows
    assert measurement == "cell"
    assert got_tags == {"site": "shop", "device": "bms", **tags}
    assert field in fields


def test_when_a_path_is_not_victrons_then_nothing_is_stored() -> None:
    assert field_for("bms", "/Temperatures/Cell1") is None  # no BMS driver publishes this
    assert landed("bms", "/Temperatures/Cell1", 21.0) == []


@pytest.mark.parametrize(
    ("role", "path", "measurement", "field"),
    [
        ("system", "/Dc/Charger/Power", "system", "charger_power_w"),
        ("shunt", "/Dc/0/MidVoltage", "battery", "mid_voltage_v"),
        ("shunt", "/Alarms/MidVoltage", "battery", "alarm_mid_voltage"),
        ("shunt", "/Alarms/Alarm", "battery", "alarm"),
        ("bms", "/Errors/SmartLithium/Communication", "battery", "error_smartlithium_communication"),
        ("bms", "/Errors/SmartLithium/Voltage", "battery", "error_smartlithium_voltage"),
        ("bms", "/Errors/SmartLithium/NrOfBatteries", "battery", "error_smartlithium_nr_of_batteries"),
        ("bms", "/Errors/SmartLithium/InvalidConfiguration", "battery", "error_smartlithium_invalid_configuration"),
        ("bms", "/History/MinimumCellVoltage", "battery", "history_min_cell_voltage_v"),
        ("bms", "/History/MaximumCellVoltage", "battery", "history_max_cell_voltage_v"),
        ("bms", "/System/Temperature1", "battery", "temperature_1_c"),
        ("bms", "/System/Temperature4", "battery", "temperature_4_c"),
        ("bms", "/System/MOSTemperature", "battery", "mos_temperature_c"),
        ("bms", "/Alarms/HighCellVoltage", "battery", "alarm_high_cell_voltage"),
        ("bms", "/Alarms/BmsCable", "battery", "alarm_bms_cable"),
        ("bms", "/Alarms/Contactor", "battery", "alarm_contactor"),
        ("bms", "/Alarms/HighCurrent", "battery", "alarm_high_current"),
        ("bms", "/Alarms/InternalFailure", "battery", "alarm_internal_failure"),
    ],
)
def test_when_an_operator_value_is_observed_then_it_is_stored(
    role: str, path: str, measurement: str, field: str
) -> None:
    [(got, _tags, fields)] = landed(role, path, 2.0)
    assert got == measurement
    assert field in fields


@pytest.mark.parametrize(
    ("service", "path", "address"),
    [
        ("system", "/Dc/Charger/Power", 855),
        ("battery", "/Errors/SmartLithium/Communication", 1324),
        ("battery", "/Errors/SmartLithium/Voltage", 1325),
        ("battery", "/Errors/SmartLithium/NrOfBatteries", 1326),
        ("battery", "/Errors/SmartLithium/InvalidConfiguration", 1327),
    ],
)
def test_when_the_register_map_is_read_then_the_stored_extras_have_their_v1_0_101_registers(
    service: str, path: str, address: int
) -> None:
    assert register_by_path(service)[path].address == address


@pytest.mark.parametrize(
    ("rule", "problem"),
    [("sometimes", "unknown rule"), ("", None), ("null_ok", None)],
)
def test_a_fields_table_rule_is_checked_at_load(
    monkeypatch: pytest.MonkeyPatch, rule: str, problem: str | None
) -> None:
    row = {"role": "system", "path": "/X", "measurement": "system", "field": "x", "kind": "int", "ttl": "system"}
    monkeypatch.setattr(tables, "_rows", lambda name: [{**row, "rule": rule}])
    tables.fields.cache_clear()
    try:
        if problem is None:
            assert [spec.null_ok for spec in tables.fields()] == [rule == "null_ok"]
        else:
            with pytest.raises(ValueError, match=problem):
                tables.fields()
    finally:
        monkeypatch.undo()
        tables.fields.cache_clear()
