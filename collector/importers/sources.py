"""Open the files of an import and hand each one's rows to the right parser."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path
from typing import IO

from collector.importers.formats import FORMATS
from collector.importers.mapping import Mapping
from collector.importers.records import Parsed


@dataclass(frozen=True)
class ImportSpec:
    """Everything a parser needs besides the file: format, site, mapping and the time options."""

    format: str  # a key of collector.importers.formats.FORMATS
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
    fmt = FORMATS[spec.format]
    if fmt.unpack is not None and _is_tar(path):
        for member, member_lines in fmt.unpack(handle):
            for item in fmt.parse(counter.counted(member_lines), member, spec):
                yield member, item
        return
    for item in fmt.parse(counter.counted(text_lines(handle)), path.name, spec):
        yield str(path), item


def _is_tar(path: Path) -> bool:
    return path.name.endswith((".tar", ".tar.gz", ".tgz")) or (path.is_file() and tarfile.is_tarfile(path))
