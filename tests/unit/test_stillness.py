"""The stillness watch: a device none of whose fast-moving values changed for `after_s` is suspect (a hung GX
service cannot be told from a device at rest otherwise: heartbeat and register 830 keep ticking)."""

from __future__ import annotations

from collector.gx import tables
from collector.health import HealthSnapshot, health_fields, metric_families
from collector.observation import DeviceGone, Invalid, Observation
from collector.stillness import Stillness


def obs(role: str, path: str, value: object, mono_s: float, source: str = "mqtt") -> Observation:
    return Observation(role, path, value, source, mono_s)  # type: ignore[arg-type]


def test_when_fast_moving_values_stop_changing_then_suspect_after_the_configured_time() -> None:
    watch = Stillness(after_s=30.0)
    for t in range(10):
        watch.observe([obs("shunt", "/Dc/0/Voltage", 52.0 + t / 100, float(t))])
    # the shunt's service hangs at t=9: the same values keep arriving (heartbeat confirms, Modbus re-reads)
    for t in range(10, 60):
        watch.observe(
            [obs("shunt", "/Dc/0/Voltage", 52.09, float(t)), obs("shunt", "/Dc/0/Voltage", 52.09, t, "modbus")]
        )
    assert watch.unchanged_s(38.0)["shunt"] == 29.0
    assert watch.suspects(38.0) == []
    assert watch.suspects(39.0) == ["shunt"]
    watch.observe([obs("shunt", "/Dc/0/Current", -3.1, 60.0), obs("shunt", "/Dc/0/Current", -3.2, 61.0)])
    assert watch.suspects(62.0) == [], "one moving value is enough"


def test_when_only_slow_or_unlisted_values_change_then_still_suspect() -> None:
    watch = Stillness(after_s=5.0)
    watch.observe([obs("shunt", "/Dc/0/Voltage", 52.0, 0.0)])
    for t in range(1, 10):  # SoC and temperature are not fast-moving: they may well change while V, I hang
        watch.observe([obs("shunt", "/Soc", 50.0 + t, float(t)), obs("shunt", "/Dc/0/Temperature", 20.0 + t, t)])
    assert watch.suspects(10.0) == ["shunt"]


def test_when_each_source_reports_its_own_resolution_then_no_change_is_invented() -> None:
    # MQTT 52.310001 and Modbus 52.31 for one unchanged voltage: not a change
    watch = Stillness(after_s=5.0)
    for t in range(10):
        watch.observe(
            [obs("bms", "/Dc/0/Voltage", 52.310001373291016, t), obs("bms", "/Dc/0/Voltage", 52.31, t, "modbus")]
        )
    assert watch.suspects(10.0) == ["bms"]


def test_when_a_cell_voltage_changes_then_the_bms_is_not_suspect_and_per_cell_paths_match() -> None:
    watch = Stillness(after_s=5.0)
    watch.observe([obs("bms", "/Voltages/Cell7", 3.301, 0.0), obs("bms", "/Cell/3/Volts", 3.2, 0.0)])
    watch.observe([obs("bms", "/Cell/3/Volts", 3.201, 8.0)])
    assert watch.unchanged_s(10.0) == {"bms": 2.0}
    watch.observe([obs("bms", "/Voltages/Sum", 60.0, 9.0)])  # not in moving.csv
    assert watch.unchanged_s(10.0) == {"bms": 2.0}


def test_when_invalid_becomes_a_number_then_that_is_a_change() -> None:
    watch = Stillness(after_s=5.0)
    watch.observe([obs("system", "/Ac/Grid/L1/Power", Invalid.NULL, 0.0)])
    watch.observe([obs("system", "/Ac/Grid/L1/Power", 1200.0, 7.0)])
    assert watch.suspects(8.0) == []


def test_when_a_device_is_gone_then_not_suspect_and_it_starts_afresh_when_back() -> None:
    watch = Stillness(after_s=5.0)
    watch.observe([obs("shunt", "/Dc/0/Voltage", 52.0, 0.0)])
    watch.observe([DeviceGone("shunt", "mqtt", 1.0)])
    assert watch.unchanged_s(20.0) == {}
    watch.observe([obs("shunt", "/Dc/0/Voltage", 52.0, 20.0)])
    assert watch.suspects(21.0) == []


def test_when_after_s_is_0_then_detection_is_off() -> None:
    watch = Stillness(after_s=0.0)
    watch.observe([obs("shunt", "/Dc/0/Voltage", 52.0, 0.0)])
    assert watch.suspects(1e6) == []


def test_when_a_device_is_suspect_then_the_health_row_and_metrics_say_so() -> None:
    snap = HealthSnapshot(unchanged_s={"shunt": 400.0, "bms": 2.0}, suspect_after_s=300.0)
    fields = health_fields(snap, 0)
    assert (fields["shunt_suspect"], fields["bms_suspect"], fields["suspect_devices"]) == (1, 0, 1)
    assert fields["shunt_unchanged_s"] == 400.0
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for m in metric_families(snap) for s in m.samples}
    assert samples[("bess_collector_device_suspect", (("device", "shunt"),))] == 1.0
    assert samples[("bess_collector_device_suspect", (("device", "bms"),))] == 0.0
    assert samples[("bess_collector_device_unchanged_seconds", (("device", "shunt"),))] == 400.0


def test_the_moving_table_names_only_paths_the_field_map_stores() -> None:
    for moving in tables.moving():
        found = tables.field_for(moving.role, moving.path.replace("{n}", "1").replace("{b}", "0"))
        assert found is not None, moving
