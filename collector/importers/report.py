"""The import's running counts, progress lines and final summary. Pure apart from the clock passed in."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from collector.importers.duplicates import Duplicates
from collector.importers.records import BadRow, Skipped

FIRST_LOCATIONS = 5
EXIT_OK = 0
EXIT_STALLED = 1  # InfluxDB took nothing for the stall deadline: the rest stays in the buffer, rerun
EXIT_NOTHING = 2  # not one sample from any file (also: bad config / mapping / usage, from the command)
EXIT_PARTIAL = 3  # finished, but lines were set aside (dead letters) or a file contributed nothing


@dataclass
class ImportReport:
    """What an import did: rows read, samples, lines written, problems by reason with first locations."""

    files: int = 0
    rows_read: int = 0
    samples: int = 0
    lines_buffered: int = 0
    lines_written: int = 0
    lines_rejected: int = 0
    lines_resumed: int = 0  # written from the leftover of an interrupted run (not this run's points)
    rejected_resumed: int = 0
    duplicates: Duplicates = field(default_factory=Duplicates)
    complete: bool = False
    elapsed_s: float = 0.0
    bad: Counter[str] = field(default_factory=Counter)
    bad_first: dict[str, list[str]] = field(default_factory=dict)
    bad_example: dict[str, str] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_first: dict[str, list[str]] = field(default_factory=dict)
    file_samples: dict[str, int] = field(default_factory=dict)  # input file -> samples it gave
    file_rows: dict[str, int] = field(default_factory=dict)  # input file -> non-empty lines it had

    def file_done(self, name: str, rows: int, samples: int) -> None:
        """Record what one input file gave (a file giving no sample fails the import, see verdict)."""
        self.files += 1
        self.file_rows[name] = rows
        self.file_samples[name] = samples

    def note(self, item: BadRow | Skipped, file: str) -> None:
        """Count one problem and remember where the first few were (file:line)."""
        where = f"{item.file or file}:{item.line_no}" if item.line_no else (item.file or file)
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
        dups = self.duplicates.count
        distinct = f" ({self.samples - dups:,} distinct)" if dups else ""
        lines = [
            f"import {state}: {self.files} file(s), {self.rows_read:,} rows read, {self.samples:,} samples{distinct}, "
            f"{self.lines_written:,} points written, {self.lines_rejected:,} rejected by InfluxDB, "
            f"{self.bad_rows:,} bad rows, {sum(self.skipped.values()):,} skipped, {self.elapsed_s:.1f} s",
        ]
        if self.lines_resumed or self.rejected_resumed:
            lines.append(
                f"  resumed: {self.lines_resumed:,} points left in the buffer by an interrupted run were written "
                f"first ({self.rejected_resumed:,} rejected); they are not counted above"
            )
        if dups:
            lines.append(f"  duplicate: {self.duplicate_text()}")
        for reason, count in self.bad.most_common():
            where = ", ".join(self.bad_first[reason])
            lines.append(f"  bad: {reason}: {count:,} (first at {where}; e.g. {self.bad_example[reason]!r})")
        for reason, count in self.skipped.most_common():
            lines.append(f"  skipped: {reason}: {count:,} (first at {', '.join(self.skipped_first[reason])})")
        return lines

    def duplicate_text(self) -> str:
        """One line on the samples that repeat an earlier series and time."""
        d = self.duplicates
        return (
            f"{d.count:,} samples repeat the series and time of an earlier one, {d.differing:,} with a different "
            f"value (InfluxDB keeps the later); first: {'; '.join(d.examples)}"
        )


def verdict(report: ImportReport, stalled: bool, dead_letters_hint: str = "") -> tuple[int, list[str]]:
    """The exit code and the error lines for stderr: nothing set aside or dropped without the user knowing."""
    if stalled:
        return EXIT_STALLED, []
    if report.samples == 0:
        return EXIT_NOTHING, ["error: nothing could be imported: check --format, the header and the mapping"]
    errors = []
    if report.duplicates.count:
        errors.append(f"warning: {report.duplicate_text()}")
    for name, samples in report.file_samples.items():
        if samples == 0:
            rows = report.file_rows.get(name, 0)
            why = "the file is empty" if rows == 0 else f"{rows:,} lines, not one sample: check its header and mapping"
            errors.append(f"error: {name} contributed nothing ({why})")
    rejected = report.lines_rejected + report.rejected_resumed
    if rejected:
        errors.append(
            f"error: InfluxDB rejected {rejected:,} lines; they are set aside as dead letters"
            + (f": {dead_letters_hint}" if dead_letters_hint else "")
        )
    failed = any(line.startswith("error:") for line in errors)
    return (EXIT_PARTIAL if failed else EXIT_OK), errors
