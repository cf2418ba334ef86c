"""Line-level CSV reading shared by the parsers: physical line numbers, NUL bytes as bad rows. Pure."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator

from collector.importers.records import BadRow, bad


def split_line(line: str) -> list[str]:
    """One CSV line -> its cells (quoted cells allowed; a cell cannot span lines)."""
    return next(csv.reader((line,)), [])


def numbered_rows(lines: Iterable[str], start: int = 1) -> Iterator[tuple[int, str, list[str]] | BadRow]:
    """(line_no, raw, cells) per non-empty line; a line with NUL bytes or broken quoting is a BadRow."""
    for line_no, line in enumerate(lines, start):
        if "\x00" in line:
            yield bad(line_no, "NUL bytes in line", line)
            continue
        if not line.strip():
            continue
        try:
            cells = split_line(line)
        except csv.Error as exc:
            yield bad(line_no, f"unparsable CSV ({exc})", line)
            continue
        yield line_no, line, cells


def parse_number(text: str) -> float:
    """A finite float from a cell ('1,5' is not accepted); ValueError otherwise."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value
