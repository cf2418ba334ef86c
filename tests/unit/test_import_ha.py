"""Home Assistant history parser: state changes, gaps, bad rows with line numbers, sign flip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bess_common.sample import Sample
from collector.importers.ha import parse_ha
from collector.importers.mapping import build_mapping
from collector.importers.records import BadRow, Skipped

MAPS = build_mapping(
    {
        "map": [
            {"source": "sensor.battery_power", "target": "system.battery_power_w", "sign": -1},
            {"source": "sensor.battery_state_of_charge", "target": "system.battery_soc_pct"},
        ]
    },
    [],
).by_source()


def _parse(text: str) -> list[Sample | BadRow | Skipped]:
    return list(parse_ha(text.splitlines(keepends=True), MAPS, "test-site"))


def _ns(iso: str) -> int:
    moment = datetime.fromisoformat(iso).astimezone(UTC)
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def test_when_state_changes_then_one_sample_per_change_with_schema_sign() -> None:
    items = _parse(
        "entity_id,state,last_changed\n"
        "sensor.battery_power,523,2024-11-24T08:27:47.003Z\n"
        "sensor.battery_power,-1200.5,2024-11-24T12:00:00.000Z\n"
        "sensor.battery_state_of_charge,55,2024-11-24T12:00:00.000Z\n"
    )
    assert items == [
        Sample("system", {"site": "test-site"}, {"battery_power_w": -523.0}, _ns("2024-11-24T08:27:47.003+00:00")),
        Sample("system", {"site": "test-site"}, {"battery_power_w": 1200.5}, _ns("2024-11-24T12:00:00+00:00")),
        Sample("system", {"site": "test-site"}, {"battery_soc_pct": 55.0}, _ns("2024-11-24T12:00:00+00:00")),
    ]


def test_when_unknown_or_unavailable_then_skipped_not_written() -> None:
    items = _parse(
        "entity_id,state,last_changed\n"
        "sensor.battery_power,unavailable,2024-11-24T08:00:00Z\n"
        "sensor.battery_power,unknown,2024-11-24T08:00:10Z\n"
        "sensor.battery_power,,2024-11-24T08:00:20Z\n"
    )
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert [i.line_no for i in skipped] == [2, 3, 4]
    assert not [i for i in items if isinstance(i, Sample) and i.measurement == "system"]


GAP_TAGS = {"site": "test-site", "target": "system.battery_power_w"}
OUTAGE_60S = {"state": "unavailable", "duration_s": 60.0}
ROWS = {
    "v0": "sensor.battery_power,5,2024-11-24T08:00:00Z\n",
    "u10": "sensor.battery_power,unavailable,2024-11-24T08:00:10Z\n",
    "k20": "sensor.battery_power,unknown,2024-11-24T08:00:20Z\n",
    "on30": "sensor.battery_power,on,2024-11-24T08:00:30Z\n",  # a bad row: the outage goes on
    "v70": "sensor.battery_power,6,2024-11-24T08:01:10Z\n",
    "soc15": "sensor.battery_state_of_charge,50,2024-11-24T08:00:15Z\n",  # another entity: no effect
    "u90": "sensor.battery_power,unavailable,2024-11-24T08:01:30Z\n",
}


@pytest.mark.parametrize(
    ("rows", "gaps"),
    [
        (["v0", "v70"], []),
        (["v0", "u10", "v70"], [("2024-11-24T08:00:10+00:00", OUTAGE_60S)]),
        (["v0", "u10", "k20", "soc15", "on30", "v70"], [("2024-11-24T08:00:10+00:00", OUTAGE_60S)]),
        (["v0", "u10", "v70", "u90"], [
            ("2024-11-24T08:00:10+00:00", {"state": "unavailable", "duration_s": 60.0}),
            ("2024-11-24T08:01:30+00:00", {"state": "unavailable"}),  # the file ends in the outage
        ]),
    ],
)  # fmt: skip
def test_when_an_entity_is_unavailable_then_one_gap_marker_per_outage_with_its_duration(
    rows: list[str], gaps: list[tuple[str, dict[str, object]]]
) -> None:
    items = _parse("entity_id,state,last_changed\n" + "".join(ROWS[r] for r in rows))
    got = [(i.ts_ns, i.tags, i.fields) for i in items if isinstance(i, Sample) and i.measurement == "import_gap"]
    assert got == [(_ns(t), GAP_TAGS, fields) for t, fields in gaps]


def test_when_rows_are_bad_then_reported_with_line_numbers_and_import_continues() -> None:
    items = _parse(
        "entity_id,state,last_changed\n"
        "sensor.battery_power,12,not-a-time\n"
        "sensor.battery_power,on,2024-11-24T08:00:10Z\n"
        "sensor.battery_power,12\n"
        "sensor.battery_power,\x00\x00,2024-11-24T08:00:20Z\n"
        "sensor.battery_power,7,2024-11-24T08:00:30Z\n"
    )
    bad = [(i.line_no, i.reason) for i in items if isinstance(i, BadRow)]
    assert bad == [
        (2, "bad timestamp"),
        (3, "non-numeric state"),
        (4, "expected 3 columns, got 2"),
        (5, "NUL bytes in line"),
    ]
    samples = [i for i in items if isinstance(i, Sample)]
    assert [s.fields for s in samples] == [{"battery_power_w": -7.0}]


def test_when_entity_is_not_mapped_then_skipped_with_its_name() -> None:
    items = _parse("entity_id,state,last_changed\nsensor.grid,5,2024-11-24T08:00:00Z\n")
    assert items == [Skipped(2, "unmapped entity sensor.grid")]


@pytest.mark.parametrize(
    ("text", "samples", "bad_lines"),
    [
        # a per-entity export without its header: the fixed order, the first line is data
        ("sensor.battery_power,5,2024-11-24T08:00:00Z\nsensor.battery_power,6,2024-11-24T08:00:10Z\n", 2, []),
        ("\x00\nsensor.battery_power,5,2024-11-24T08:00:00Z\n", 1, [1]),  # a NUL line first, then data
        ("sensor.battery_power,unavailable,2024-11-24T08:00:00Z\nsensor.battery_power,6,2024-11-24T08:00:10Z\n", 1, []),
        # not a header and not a row in the fixed order: one bad row, nothing else
        ("entity,value,time\nsensor.battery_power,6,2024-11-24T08:00:10Z\n", 0, [1]),
        ("2024-11-24T08:00:00Z,sensor.battery_power,5\n", 0, [1]),
        ("sensor.battery_power,5\nsensor.battery_power,6,2024-11-24T08:00:10Z\n", 0, [1]),
    ],
)
def test_when_the_header_is_missing_then_a_row_in_the_fixed_order_is_data_else_one_bad_row(
    text: str, samples: int, bad_lines: list[int]
) -> None:
    items = _parse(text)
    assert len([i for i in items if isinstance(i, Sample) and i.measurement == "system"]) == samples
    assert [i.line_no for i in items if isinstance(i, BadRow)] == bad_lines


def test_when_columns_are_reordered_then_header_names_decide() -> None:
    items = _parse("last_changed,entity_id,state\n2024-11-24T08:00:00Z,sensor.battery_state_of_charge,40\n")
    assert items == [
        Sample("system", {"site": "test-site"}, {"battery_soc_pct": 40.0}, _ns("2024-11-24T08:00:00+00:00"))
    ]
