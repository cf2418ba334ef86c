"""Victron VRM CSV exports (Advanced -> download CSV). Pure.

VRM's CSV layout is not a published contract, so this parser is tolerant: one or more header lines (all
lines before the first line whose first cell is a timestamp; their cells are joined per column into one
label), the first column is time (Unix seconds, ISO-8601, or `YYYY-MM-DD HH:MM:SS` in --tz), one column per
series. Without [[map]] entries in the mapping, the built-in table VRM_COLUMNS maps the labels listed in
docs/import.md; a label matches when, lower-cased and with a trailing unit in [] or () removed, it equals a
key or ends with " <key>". Victron's signs are the schema's (battery + = charging, grid + = import).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Iterator
from datetime import UTC, tzinfo

from collector.importers.csvlines import numbered_rows
from collector.importers.generic import CsvLayout, _Column, join_header, parse_data_row
from collector.importers.mapping import FieldMap
from collector.importers.records import BadRow, Parsed, Skipped, bad
from collector.importers.timeparse import parse_timestamp

VRM_COLUMNS: dict[str, str] = {
    "battery power": "system.battery_power_w",
    "battery soc": "system.battery_soc_pct",
    "battery state of charge": "system.battery_soc_pct",
    "state of charge": "system.battery_soc_pct",
    "battery voltage": "system.battery_voltage_v",
    "battery current": "system.battery_current_a",
    "pv - dc-coupled": "system.pv_dc_w",
    "pv dc-coupled": "system.pv_dc_w",
    **{f"pv - ac-coupled on output l{n}": f"system.pv_ac_output_l{n}_w" for n in (1, 2, 3)},
    **{f"pv - ac-coupled on input l{n}": f"system.pv_ac_grid_l{n}_w" for n in (1, 2, 3)},
    **{f"ac consumption l{n}": f"system.load_l{n}_w" for n in (1, 2, 3)},
    **{f"grid l{n}": f"system.grid_l{n}_w" for n in (1, 2, 3)},
}
UNIT_SCALE = {"kw": 1000.0, "kwh": None, "w": 1.0, "v": 1.0, "a": 1.0, "%": 1.0, "mv": 0.001}
_UNIT = re.compile(r"\s*[\[(]([^\])]*)[\])]\s*$")
VRM_TIME_FORMATS = ("epoch_s", "iso", "%Y-%m-%d %H:%M:%S", "%d-%m-%Y %H:%M:%S", "%d/%m/%Y %H:%M")
MAX_HEADER_ROWS = 6


def normalise_label(label: str) -> tuple[str, str]:
    """'Battery voltage [V]' -> ('battery voltage', 'v'): lower-case, spaces collapsed, unit split off."""
    unit = ""
    match = _UNIT.search(label)
    if match:
        unit = match.group(1).strip().lower()
        label = label[: match.start()]
    return " ".join(label.lower().split()), unit


def default_maps(labels: list[str]) -> tuple[dict[str, list[FieldMap]], list[str]]:
    """Built-in VRM mapping for these labels; also the labels left out as duplicates of a target."""
    maps: dict[str, list[FieldMap]] = {}
    taken: set[str] = set()
    duplicates: list[str] = []
    for label in labels[1:]:
        name, unit = normalise_label(label)
        key = next((k for k in VRM_COLUMNS if name == k or name.endswith(" " + k)), None)
        scale = UNIT_SCALE.get(unit, 1.0)
        if key is None or scale is None:
            continue
        target = VRM_COLUMNS[key]
        if target in taken:
            duplicates.append(label)
            continue
        taken.add(target)
        maps[label] = [FieldMap(source=label, target=target, scale=scale)]
    return maps, duplicates


def detect_time_format(text: str, tz: tzinfo) -> str | None:
    """The first of VRM_TIME_FORMATS that parses this cell, or None (then it is a header cell)."""
    for time_format in VRM_TIME_FORMATS:
        try:
            parse_timestamp(text, time_format, tz)
        except ValueError:
            continue
        return time_format
    return None


def parse_vrm(lines: Iterable[str], maps: dict[str, list[FieldMap]], site: str, tz: tzinfo = UTC) -> Iterator[Parsed]:
    """Yield Samples / Skipped / BadRows of a VRM export; `maps` empty means the built-in VRM_COLUMNS."""
    header: list[list[str]] = []
    columns: list[_Column] | None = None
    layout = CsvLayout(tz=tz, derive_totals=True)
    for item in numbered_rows(lines):
        if isinstance(item, BadRow):
            yield item
            continue
        line_no, raw, cells = item
        if columns is None:
            time_format = detect_time_format(cells[0], tz) if cells else None
            if time_format is None:
                header.append(cells)
                if len(header) > MAX_HEADER_ROWS:
                    yield bad(line_no, "no timestamp in the first column of any line", raw)
                    return
                continue
            layout = CsvLayout(time_format=time_format, tz=tz, derive_totals=True)
            columns = yield from _resolve_columns(line_no, header, maps)
            if not columns:
                yield bad(line_no, "no known or mapped VRM column in header", raw)
                return
        yield from parse_data_row(line_no, raw, cells, time_index=0, columns=columns, layout=layout, site=site)


def _resolve_columns(
    line_no: int, header: list[list[str]], maps: dict[str, list[FieldMap]]
) -> Generator[Parsed, None, list[_Column]]:
    labels = join_header(header)
    duplicates: list[str] = []
    if not maps:
        maps, duplicates = default_maps(labels)
    for label in duplicates:
        yield Skipped(line_no, f"VRM column {label} duplicates an earlier one")
    for label in labels[1:]:
        if label and label not in maps and label not in duplicates:
            yield Skipped(line_no, f"unmapped column {label}")
    return [_Column(i, label, tuple(maps[label])) for i, label in enumerate(labels) if i and label in maps]
