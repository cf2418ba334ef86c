"""The import formats, one entry each: its name (`--format`, a mapping's `format`), whether it needs
`[[map]]` entries, how one file's text lines become parsed items, and how an archive holds its files.

A new format is a parser module plus one entry in FORMATS; the command's choices, the mapping check and the
dispatch all read this table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from collector.importers.generic import CsvLayout, parse_table
from collector.importers.ha import parse_ha
from collector.importers.pylontech import iter_tar_logs, parse_pylontech
from collector.importers.records import Parsed
from collector.importers.vrm import parse_vrm

if TYPE_CHECKING:
    from collector.importers.sources import ImportSpec

# (text lines of one file, that file's name, the import's options) -> items
Parser = Callable[[Iterable[str], str, "ImportSpec"], Iterator[Parsed]]
# an archive's binary handle -> (member name, member's text lines)
Unpacker = Callable[[IO[bytes]], Iterator[tuple[str, list[str]]]]


@dataclass(frozen=True)
class ImportFormat:
    """One importable format."""

    name: str
    parse: Parser
    needs_map: bool = False  # True: nothing can be imported without [[map]] entries
    unpack: Unpacker | None = None  # set when the format's files may come in a tarball


def _ha(lines: Iterable[str], _file: str, spec: ImportSpec) -> Iterator[Parsed]:
    return parse_ha(lines, spec.mapping.by_source(), spec.site)


def _vrm(lines: Iterable[str], _file: str, spec: ImportSpec) -> Iterator[Parsed]:
    return parse_vrm(lines, spec.mapping.by_source(), spec.site, spec.tz)


def _generic(lines: Iterable[str], _file: str, spec: ImportSpec) -> Iterator[Parsed]:
    layout = CsvLayout(time_column=spec.time_column, time_format=spec.time_format, tz=spec.tz, derive_totals=True)
    return parse_table(lines, layout, spec.mapping.by_source(), spec.site)


def _pylontech(lines: Iterable[str], file: str, spec: ImportSpec) -> Iterator[Parsed]:
    return parse_pylontech(lines, file, spec.mapping.pylontech, spec.site, tz=spec.tz, trust_status=spec.trust_status)


FORMATS: dict[str, ImportFormat] = {
    f.name: f
    for f in (
        ImportFormat("ha", _ha, needs_map=True),
        ImportFormat("vrm", _vrm),
        ImportFormat("generic", _generic, needs_map=True),
        ImportFormat("pylontech-bms", _pylontech, unpack=iter_tar_logs),
    )
}
