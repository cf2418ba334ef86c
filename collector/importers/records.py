"""What a parser yields besides samples: rows it could not use, with their line numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bess_common.sample import Sample

RAW_MAX_CHARS = 160
_NULS = re.compile("\x00+")


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that could not be imported (malformed): counted and reported, never silently dropped."""

    line_no: int
    reason: str
    raw: str = ""
    file: str = ""  # the file (or tar member) when known


@dataclass(frozen=True, slots=True)
class Skipped:
    """A row (or value) left out on purpose: a documented gap such as `unavailable` or an unmapped entity."""

    line_no: int
    reason: str
    file: str = ""


Parsed = Sample | BadRow | Skipped


def bad(line_no: int, reason: str, raw: str, file: str = "") -> BadRow:
    """A BadRow with the raw text shortened for reports (runs of NUL bytes shown as <n NUL>)."""
    text = _NULS.sub(lambda m: f"<{len(m.group())} NUL>", raw.rstrip("\r\n"))
    if len(text) > RAW_MAX_CHARS:
        text = text[:RAW_MAX_CHARS] + "..."
    return BadRow(line_no, reason, text, file)
