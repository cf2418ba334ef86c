"""The import's running counts, progress lines and final summary. Pure apart from the clock passed in."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from collector.importers.records import BadRow, Skipped

FIRST_LOCATIONS = 5


@dataclass
class ImportReport:
    """What an import did: rows read, samples, lines written, problems by reason with first locations."""

    files: int = 0
    rows_read: int = 0
    samples: int = 0
    lines_buffered: int = 0
    lines_written: int = 0
    lines_rejected: int = 0
    complete: bool = False
    elapsed_s: float = 0.0
    bad: Counter[str] = field(default_factory=Counter)
    bad_first: dict[str, list[str]] = field(default_factory=dict)
    bad_example: dict[str, str] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_first: dict[str, list[str]] = field(default_factory=dict)

    def note(self, item: BadRow | Skipped, file: str) -> None:
        """Count one problem and remember where the first few were (file:line)."""
        where = f"{item.file or file}:{item.line_no}"
        if isinstance(item, BadRow):
            self.bad[item.reason] += 1
            firsts = self.bad_first.setdefault(item.reason, [])
            if not firsts:
                self.bad_example[item.reason] = item.raw
        else:
            self.skipped[item.reason] += 1
            firsts = self.skipped_first.setdefault(item.reason, [])
        if len(firsts) < FIRST_LOCATIONS and (not firsts or firsts[-1] != where):
            firsts.append(where)

    @property
    def bad_rows(self) -> int:
        """How many bad rows (or bad cells) in all."""
        return sum(self.bad.values())

    def progress_fields(self, fraction: float | None) -> dict[str, Any]:
        """Fields of a progress log line."""
        rate = self.rows_read / self.elapsed_s if self.elapsed_s > 0 else 0.0
        out: dict[str, Any] = {
            "rows": self.rows_read,
            "rows_per_s": round(rate),
            "written": self.lines_written,
            "bad_rows": self.bad_rows,
            "files": self.files,
        }
        if fraction is not None:
            out["pct"] = round(100 * fraction, 1)
        return out

    def progress_line(self, fraction: float | None) -> str:
        """A one-line progress display for a terminal."""
        f = self.progress_fields(fraction)
        pct = f"{f['pct']:5.1f}% " if "pct" in f else ""
        return f"{pct}rows {f['rows']:,} ({f['rows_per_s']:,}/s)  written {f['written']:,}  bad {f['bad_rows']:,}"

    def summary_lines(self) -> list[str]:
        """The final summary, for people."""
        state = "complete" if self.complete else "INCOMPLETE (the rest stays in the buffer; rerun to finish)"
        lines = [
            f"import {state}: {self.files} file(s), {self.rows_read:,} rows read, {self.samples:,} samples, "
            f"{self.lines_written:,} points written, {self.lines_rejected:,} rejected by InfluxDB, "
            f"{self.bad_rows:,} bad rows, {sum(self.skipped.values()):,} skipped, {self.elapsed_s:.1f} s",
        ]
        for reason, count in self.bad.most_common():
            where = ", ".join(self.bad_first[reason])
            lines.append(f"  bad: {reason}: {count:,} (first at {where}; e.g. {self.bad_example[reason]!r})")
        for reason, count in self.skipped.most_common():
            lines.append(f"  skipped: {reason}: {count:,} (first at {', '.join(self.skipped_first[reason])})")
        return lines
