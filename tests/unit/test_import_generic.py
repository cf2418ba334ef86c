"""Generic CSV and VRM parsers, and timestamp parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bess_common.sample import Sample
from collector.importers.generic import CsvLayout, parse_table
from collector.importers.mapping import build_mapping
from collector.importers.records import BadRow, Skipped
from collector.importers.timeparse import parse_timestamp, zone
from collector.importers.vrm import normalise_label, parse_vrm

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
T0_NS = int(T0.timestamp()) * 10**9


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


@pytest.mark.parametrize(
    ("text", "time_format", "tz", "expected_ns"),
    [
        ("2024-03-01T12:00:00Z", "iso", "UTC", T0_NS),
        ("2024-03-01T13:00:00+01:00", "iso", "UTC", T0_NS),
        ("2024-03-01 13:00:00", "iso", "Europe/Madrid", T0_NS),
        ("01/03/2024 13:00", "%d/%m/%Y %H:%M", "Europe/Madrid", T0_NS),
        (str(T0_NS // 10**9), "epoch_s", "Europe/Madrid", T0_NS),
        (str(T0_NS // 10**6 + 1), "epoch_ms", "UTC", T0_NS + 1_000_000),
        (str(T0_NS + 7), "epoch_ns", "UTC", T0_NS + 7),
        ("2024-03-01T12:00:00.000123Z", "iso", "UTC", T0_NS + 123_000),
    ],
)
def test_when_timestamp_is_valid_then_exact_ns(text: str, time_format: str, tz: str, expected_ns: int) -> None:
    assert parse_timestamp(text, time_format, zone(tz)) == expected_ns


@pytest.mark.parametrize(("text", "time_format"), [("", "iso"), ("yesterday", "iso"), ("12x", "epoch_s")])
def test_when_timestamp_is_invalid_then_value_error(text: str, time_format: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text, time_format)


def test_when_zone_is_unknown_then_plain_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        zone("Mars/Olympus")
    assert zone("Europe/Madrid") == ZoneInfo("Europe/Madrid")


GENERIC_MAPS = build_mapping(
    {}, ["P_batt_kW=system.battery_power_w*1000", "PV=system.pv_w", "SOC=system.battery_soc_pct"]
).by_source()


def test_when_generic_row_has_mapped_columns_then_one_sample_per_measurement() -> None:
    items = list(
        parse_table(
            _lines("when;ignored\nwhen,P_batt_kW,PV,SOC,other\n01/03/2024 13:00,-1.5,300,55,x\n")[1:],
            CsvLayout(time_column="when", time_format="%d/%m/%Y %H:%M", tz=zone("Europe/Madrid")),
            GENERIC_MAPS,
            "s",
        )
    )
    samples = [i for i in items if isinstance(i, Sample)]
    assert samples == [
        Sample("system", {"site": "s"}, {"battery_power_w": -1500.0, "pv_w": 300.0, "battery_soc_pct": 55.0}, T0_NS)
    ]
    assert Skipped(1, "unmapped column other") in items


def test_when_generic_cells_are_bad_then_other_values_still_land() -> None:
    items = list(
        parse_table(
            _lines(
                "t,P_batt_kW,PV,SOC\n2024-03-01T12:00:00Z,abc,,50\nnot a time,1,2,3\n2024-03-01T12:00:01Z,0.5,1,2\n"
            ),
            CsvLayout(),
            GENERIC_MAPS,
            "s",
        )
    )
    assert [(i.line_no, i.reason) for i in items if isinstance(i, BadRow)] == [
        (2, "non-numeric value in P_batt_kW"),
        (3, "bad timestamp"),
    ]
    assert Skipped(2, "empty cell PV") in items
    samples = [i for i in items if isinstance(i, Sample)]
    assert [s.fields for s in samples] == [
        {"battery_soc_pct": 50.0},
        {"battery_power_w": 500.0, "pv_w": 1.0, "battery_soc_pct": 2.0},
    ]


def test_when_time_column_is_missing_then_one_bad_row() -> None:
    items = list(parse_table(_lines("a,b\n1,2\n"), CsvLayout(time_column="when"), GENERIC_MAPS, "s"))
    assert len(items) == 1 and isinstance(items[0], BadRow)


def test_when_phases_are_mapped_then_totals_are_derived() -> None:
    maps = build_mapping({}, ["L1=system.load_l1_w", "L2=system.load_l2_w"]).by_source()
    items = list(
        parse_table(_lines("t,L1,L2\n2024-03-01T12:00:00Z,100,50\n"), CsvLayout(derive_totals=True), maps, "s")
    )
    assert [i.fields for i in items if isinstance(i, Sample)] == [
        {"load_l1_w": 100.0, "load_l2_w": 50.0, "load_w": 150.0}
    ]


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Battery voltage [V]", ("battery voltage", "v")),
        ("  PV - DC-coupled (kW) ", ("pv - dc-coupled", "kw")),
        ("Grid L1", ("grid l1", "")),
    ],
)
def test_when_vrm_label_is_normalised_then_unit_split_off(label: str, expected: tuple[str, str]) -> None:
    assert normalise_label(label) == expected


VRM_EXPORT = (
    "timestamp,Gateway,Gateway,Gateway,Solar Charger,Gateway,Gateway\n"
    ",Battery SOC [%],Battery Power [W],Battery voltage [V],PV - DC-coupled [kW],Grid L1 [W],Fancy thing\n"
    f"{T0_NS // 10**9},55.5,-300,52.1,1.2,40,9\n"
    f"{T0_NS // 10**9 + 60},56,x,52.2,,41,9\n"
)


def test_when_vrm_export_has_two_header_lines_then_builtin_columns_map() -> None:
    items = list(parse_vrm(_lines(VRM_EXPORT), {}, "vrm-site"))
    samples = [i for i in items if isinstance(i, Sample)]
    assert samples[0] == Sample(
        "system",
        {"site": "vrm-site"},
        {
            "battery_soc_pct": 55.5,
            "battery_power_w": -300.0,
            "battery_voltage_v": 52.1,
            "pv_dc_w": 1200.0,
            "grid_l1_w": 40.0,
            "pv_w": 1200.0,
            "grid_w": 40.0,
        },
        T0_NS,
    )
    assert samples[1].ts_ns == T0_NS + 60 * 10**9
    assert "battery_power_w" not in samples[1].fields
    assert [(i.line_no, i.reason) for i in items if isinstance(i, BadRow)] == [
        (4, "non-numeric value in Gateway Battery Power [W]")
    ]
    assert any(isinstance(i, Skipped) and i.reason == "unmapped column Gateway Fancy thing" for i in items)


def test_when_vrm_mapping_is_given_then_it_replaces_the_builtin_table() -> None:
    maps = build_mapping({}, ["Gateway Fancy thing=system.load_w"]).by_source()
    samples = [i for i in parse_vrm(_lines(VRM_EXPORT), maps, "s") if isinstance(i, Sample)]
    assert [s.fields for s in samples] == [{"load_w": 9.0}, {"load_w": 9.0}]


def test_when_vrm_file_has_no_timestamps_then_one_bad_row() -> None:
    items = list(parse_vrm(_lines("a\nb\nc\nd\ne\nf\ng\nh\n"), {}, "s"))
    assert len(items) == 1 and isinstance(items[0], BadRow)
