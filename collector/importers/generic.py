"""Generic CSV: one timestamp column plus value columns, mapped by column label. Pure.

Each data line becomes one Sample per (measurement, tags) among its mapped columns. An empty cell is a
gap (Skipped); a non-numeric cell is a BadRow for that cell while the line's other values still land.
Columns the mapping does not name are ignored (and listed once in the summary as unmapped).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, tzinfo

from bess_common import schema
from bess_common.sample import FieldValue, Sample
from collector.importers.csvlines import numbered_rows, parse_number
from collector.importers.mapping import FieldMap
from collector.importers.records import BadRow, Parsed, Skipped, bad
from collector.importers.timeparse import parse_timestamp


@dataclass(frozen=True)
class CsvLayout:
    """How to read the table: which column holds time, in which format and zone; how many header lines."""

    time_column: str | None = None  # None: the first column
    time_format: str = "iso"
    tz: tzinfo = UTC
    header_rows: int = 1
    derive_totals: bool = False  # add pv_w / load_w / grid_w from phases (schema.derive_system_totals)


@dataclass(frozen=True)
class _Column:
    index: int
    label: str
    maps: tuple[FieldMap, ...]


def join_header(rows: list[list[str]]) -> list[str]:
    """Several header lines -> one label per column: its non-empty cells joined by a space."""
    width = max((len(r) for r in rows), default=0)
    labels = []
    for i in range(width):
        parts = [r[i].strip() for r in rows if i < len(r) and r[i].strip()]
        labels.append(" ".join(parts))
    return labels


def _columns(labels: list[str], maps: dict[str, list[FieldMap]]) -> list[_Column]:
    return [_Column(i, label, tuple(maps[label])) for i, label in enumerate(labels) if label in maps]


def unmapped_labels(labels: list[str], time_index: int, maps: dict[str, list[FieldMap]]) -> list[str]:
    """Column labels that the mapping does not name (for the summary)."""
    return [label for i, label in enumerate(labels) if i != time_index and label and label not in maps]


def parse_table(
    lines: Iterable[str], layout: CsvLayout, maps: dict[str, list[FieldMap]], site: str
) -> Iterator[Parsed]:
    """Yield Samples, Skipped and BadRows for a CSV table with `layout.header_rows` header lines."""
    header: list[list[str]] = []
    columns: list[_Column] = []
    time_index = 0
    for item in numbered_rows(lines):
        if isinstance(item, BadRow):
            yield item
            continue
        line_no, raw, cells = item
        if len(header) < layout.header_rows:
            header.append(cells)
            if len(header) == layout.header_rows:
                labels = join_header(header)
                found = _time_index(labels, layout.time_column)
                if found is None:
                    yield bad(line_no, f"no time column {layout.time_column!r} in header", raw)
                    return
                time_index = found
                columns = _columns(labels, maps)
                for label in unmapped_labels(labels, time_index, maps):
                    yield Skipped(line_no, f"unmapped column {label}")
                if not columns:
                    yield bad(line_no, "no mapped column in header", raw)
                    return
            continue
        yield from parse_data_row(line_no, raw, cells, time_index=time_index, columns=columns, layout=layout, site=site)


def _time_index(labels: list[str], time_column: str | None) -> int | None:
    if time_column is None:
        return 0
    return labels.index(time_column) if time_column in labels else None


def parse_data_row(
    line_no: int, raw: str, cells: list[str], *, time_index: int, columns: list[_Column], layout: CsvLayout, site: str
) -> Iterator[Parsed]:
    """One data line -> Samples grouped by (measurement, tags); per-cell problems as BadRow/Skipped."""
    if time_index >= len(cells):
        yield bad(line_no, "short line (no time cell)", raw)
        return
    try:
        ts_ns = parse_timestamp(cells[time_index], layout.time_format, layout.tz)
    except ValueError:
        yield bad(line_no, "bad timestamp", raw)
        return
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, FieldValue]] = {}
    counters: set[tuple[str, tuple[tuple[str, str], ...]]] = set()  # groups holding a counter reading
    for column in columns:
        text = cells[column.index].strip() if column.index < len(cells) else ""
        if not text:
            yield Skipped(line_no, f"empty cell {column.label}")
            continue
        try:
            value = parse_number(text)
        except ValueError:
            yield bad(line_no, f"non-numeric value in {column.label}", raw)
            continue
        for fmap in column.maps:
            key = (fmap.measurement, tuple(sorted(fmap.tags.items())))
            fields = groups.setdefault(key, {})
            fields[fmap.field] = float(fields.get(fmap.field, 0.0)) + fmap.apply(value)
            if fmap.transform == "rate":
                counters.add(key)
    for (measurement, tags), fields in groups.items():
        # totals are derived from powers, never from a counter reading (the rate stage turns it into one)
        derive = layout.derive_totals and measurement == schema.SYSTEM and (measurement, tags) not in counters
        out = _derive(fields) if derive else fields
        yield Sample(measurement, {"site": site, **dict(tags)}, out, ts_ns)


def _derive(fields: dict[str, FieldValue]) -> dict[str, FieldValue]:
    derived = schema.derive_system_totals(fields)
    for total in ("pv_w", "load_w", "grid_w"):
        if total in fields:  # a column mapped straight to the total wins over the sum of phases
            derived[total] = fields[total]
    return derived
