"""Open the files of an import and hand each one's rows to the right parser."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path
from typing import IO

from collector.importers.generic import CsvLayout, parse_table
from collector.importers.ha import parse_ha
from collector.importers.mapping import Mapping
from collector.importers.pylontech import iter_tar_logs, parse_pylontech
from collector.importers.records import Parsed
from collector.importers.vrm import parse_vrm


@dataclass(frozen=True)
class ImportSpec:
    """Everything a parser needs besides the file: format, site, mapping and the time options."""

    format: str
    site: str
    mapping: Mapping
    tz: tzinfo = UTC
    time_column: str | None = None
    time_format: str = "iso"
    trust_status: bool = True  # pylontech-bms: use B_Status where the log has it


class RowCounter:
    """Counts the lines handed to the parsers (rows read, for progress and the summary)."""

    def __init__(self) -> None:
        self.count = 0

    def counted(self, lines: Iterable[str]) -> Iterator[str]:
        """The same lines, counted as they pass."""
        for line in lines:
            self.count += 1
            yield line


def text_lines(handle: IO[bytes]) -> io.TextIOWrapper:
    """UTF-8 text lines of a binary handle (BOM stripped; undecodable bytes become U+FFFD, so such a cell
    fails to parse as a number and is reported)."""
    return io.TextIOWrapper(handle, encoding="utf-8-sig", errors="replace", newline="")


def parse_file(path: Path, handle: IO[bytes], spec: ImportSpec, counter: RowCounter) -> Iterator[tuple[str, Parsed]]:
    """(file name for reports, item) for every item of one input file (a tarball: of each member)."""
    if spec.format == "pylontech-bms" and _is_tar(path):
        for member, member_lines in iter_tar_logs(handle):
            for item in parse_pylontech(
                counter.counted(member_lines),
                member,
                spec.mapping.pylontech,
                spec.site,
                tz=spec.tz,
                trust_status=spec.trust_status,
            ):
                yield member, item
        return
    for item in _parse_text(counter.counted(text_lines(handle)), path, spec):
        yield str(path), item


def _is_tar(path: Path) -> bool:
    return path.name.endswith((".tar", ".tar.gz", ".tgz")) or (path.is_file() and tarfile.is_tarfile(path))


def _parse_text(lines: Iterable[str], path: Path, spec: ImportSpec) -> Iterator[Parsed]:
    maps = spec.mapping.by_source()
    if spec.format == "ha":
        return parse_ha(lines, maps, spec.site)
    if spec.format == "vrm":
        return parse_vrm(lines, maps, spec.site, spec.tz)
    if spec.format == "generic":
        layout = CsvLayout(time_column=spec.time_column, time_format=spec.time_format, tz=spec.tz, derive_totals=True)
        return parse_table(lines, layout, maps, spec.site)
    if spec.format == "pylontech-bms":
        return parse_pylontech(
            lines, path.name, spec.mapping.pylontech, spec.site, tz=spec.tz, trust_status=spec.trust_status
        )
    raise ValueError(f"unknown format {spec.format!r}")
