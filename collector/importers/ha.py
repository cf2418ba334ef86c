"""Home Assistant history export: `entity_id,state,last_changed`, one row per state change. Pure.

Semantics: a state holds until the next change. Rows are imported as the change points they are (no
resampling, no forward fill into the database); a GROUP BY time() mean over such points weights each
change equally, not by how long it held, which is close enough at the ~5-10 s cadence of live history and
exact for the hourly long-term-statistics part (one mean per hour). `unknown` / `unavailable` (and empty)
states are gaps: Skipped, never written as values. Each outage (from the first such state of an entity to
its next numeric state) is written as one `import_gap` marker per target (bess_common.schema.IMPORT_GAP)
at the outage's start, with its duration, so that a later hold-last-value does not bridge it.

Header: matched by name in any order. Exports split per entity often lack it; the three columns are then
taken in their fixed order, `entity_id,state,last_changed`, when the first line reads as such a row (three
cells, the third a timestamp). Anything else in the first line is one BadRow and the file gives nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from bess_common import schema
from bess_common.sample import FieldValue, Sample
from collector.importers.csvlines import numbered_rows, parse_number
from collector.importers.mapping import FieldMap
from collector.importers.records import BadRow, Parsed, Skipped, bad
from collector.importers.timeparse import parse_timestamp

MISSING_STATES = frozenset({"unknown", "unavailable", "none", "null", "nan", ""})
HEADER = ("entity_id", "state", "last_changed")
FIXED_COLUMNS = (0, 1, 2)  # a headerless export: the columns in HEADER's order


def _column_index(header: list[str]) -> tuple[int, int, int] | None:
    names = [h.strip().lower() for h in header]
    if not all(name in names for name in HEADER):
        return None
    return names.index("entity_id"), names.index("state"), names.index("last_changed")


def _headerless(cells: list[str]) -> bool:
    """True when a first line is itself a data row in the fixed order (three cells, a timestamp last)."""
    if len(cells) != len(HEADER):
        return False
    try:
        parse_timestamp(cells[2])
    except ValueError:
        return False
    return True


class _Outages:
    """Per entity, the outage under way: (start ns, state) from its first missing state to its next value."""

    def __init__(self, maps: dict[str, list[FieldMap]], site: str) -> None:
        self._maps = maps
        self._site = site
        self._open: dict[str, tuple[int, str]] = {}

    def start(self, entity: str, ts_ns: int, state: str) -> None:
        """A missing state; an outage already under way goes on (its start stays)."""
        self._open.setdefault(entity, (ts_ns, state.lower() or "empty"))

    def end(self, entity: str, ts_ns: int | None) -> Iterator[Sample]:
        """The entity has a value again at ts_ns (None: the recording ends): its markers, if any."""
        if entity not in self._open:
            return
        start_ns, state = self._open.pop(entity)
        fields: dict[str, FieldValue] = {"state": state}
        if ts_ns is not None and ts_ns > start_ns:
            fields["duration_s"] = (ts_ns - start_ns) / 1e9
        for target in self._maps[entity]:
            tags = {"site": self._site, **target.tags, "target": target.target}
            yield Sample(schema.IMPORT_GAP, tags, dict(fields), start_ns)

    def close(self) -> Iterator[Sample]:
        """The file ended: outages still under way, without a duration."""
        for entity in list(self._open):
            yield from self.end(entity, None)


def parse_ha(lines: Iterable[str], maps: dict[str, list[FieldMap]], site: str) -> Iterator[Parsed]:
    """Yield one Sample per mapped state change (one per target field), Skipped for gaps, BadRow else."""
    outages = _Outages(maps, site)
    yield from _parse_lines(lines, maps, site, outages)
    yield from outages.close()


def _parse_lines(
    lines: Iterable[str], maps: dict[str, list[FieldMap]], site: str, outages: _Outages
) -> Iterator[Parsed]:
    columns: tuple[int, int, int] | None = None
    for item in numbered_rows(lines):
        if isinstance(item, BadRow):
            yield item
            continue
        line_no, raw, cells = item
        if columns is None:
            columns = _column_index(cells)
            if columns is None and _headerless(cells):
                columns = FIXED_COLUMNS  # and this first line is data
            elif columns is None:
                yield bad(line_no, "neither the header entity_id,state,last_changed nor a row in that order", raw)
                return
            else:
                continue
        if len(cells) <= max(columns):
            yield bad(line_no, f"expected {max(columns) + 1} columns, got {len(cells)}", raw)
            continue
        yield from _parse_row(line_no, raw, [cells[i].strip() for i in columns], maps, site, outages)


def _parse_row(  # noqa: PLR0917
    line_no: int, raw: str, cells: list[str], maps: dict[str, list[FieldMap]], site: str, outages: _Outages
) -> Iterator[Parsed]:
    entity, state, changed = cells
    targets = maps.get(entity)
    if not targets:
        yield Skipped(line_no, f"unmapped entity {entity}")
        return
    try:
        ts_ns = parse_timestamp(changed)
    except ValueError:
        yield bad(line_no, "bad timestamp", raw)
        return
    if state.lower() in MISSING_STATES:
        yield Skipped(line_no, f"state {state or 'empty'!s} (missing)")
        outages.start(entity, ts_ns, state)
        return
    try:
        value = parse_number(state)
    except ValueError:
        yield bad(line_no, "non-numeric state", raw)
        return
    yield from outages.end(entity, ts_ns)
    for target in targets:
        tags = {"site": site, **target.tags}
        yield Sample(target.measurement, tags, {target.field: target.apply(value)}, ts_ns)
