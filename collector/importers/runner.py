"""One import run: open each file, parse, land, show progress. The command wires it to config and I/O."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, TextIO

from collector.importers.landing import Lander
from collector.importers.rate import RateStage
from collector.importers.report import ImportReport
from collector.importers.sources import ImportSpec, RowCounter, parse_file


class ImportProgress:
    """Import progress on a TTY (one rewritten line, twice a second) and as a structlog line every `log_every_s`."""

    def __init__(
        self,
        report: ImportReport,
        log: Any,
        tty: TextIO | None,
        log_every_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._report = report
        self._log = log
        self._tty = tty
        self._log_every_s = log_every_s
        self._clock = clock
        self._start = clock()
        self._last_log = self._start
        self._last_tty = 0.0
        self.fraction: Callable[[], float | None] = lambda: None
        self.rows: Callable[[], int] = lambda: 0

    def tick(self, force: bool = False) -> None:
        """Refresh the counters and show them if it is time."""
        now = self._clock()
        self._report.elapsed_s = now - self._start
        self._report.rows_read = self.rows()
        fraction = self.fraction()
        if self._tty is not None and (force or now - self._last_tty >= 0.5):
            self._tty.write("\r" + self._report.progress_line(fraction) + "\x1b[K")
            self._tty.flush()
            self._last_tty = now
        if force or now - self._last_log >= self._log_every_s:
            self._log.info("import_progress", **self._report.progress_fields(fraction))
            self._last_log = now

    def done(self) -> None:
        """Final refresh; end the TTY line."""
        self.tick(force=True)
        if self._tty is not None:
            self._tty.write("\n")
            self._tty.flush()


def tty_or_none(stream: TextIO = sys.stderr) -> TextIO | None:
    """The stream when it is a terminal (progress line), else None (logs only)."""
    return stream if stream.isatty() else None


class _BytesDone:
    """How far through all input files (by bytes) the parsers are."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.base = 0
        self.handle: IO[bytes] | None = None

    def fraction(self) -> float:
        position = self.handle.tell() if self.handle is not None and not self.handle.closed else 0
        return min(1.0, (self.base + position) / self.total)


def run_import(paths: Sequence[Path], spec: ImportSpec, lander: Lander, progress: ImportProgress) -> None:
    """Parse and land every file, then drain the buffer; raises ImportStalled if InfluxDB stays away."""
    done = _BytesDone(sum(p.stat().st_size for p in paths))
    counter = RowCounter()
    progress.rows = lambda: counter.count
    progress.fraction = done.fraction
    lander.resume()  # what a previous, interrupted run left in this buffer goes first
    rates = RateStage(spec.mapping.map)  # counters run on across the files of one import
    for path in paths:
        rows_before, samples_before = counter.count, lander.report.samples
        with path.open("rb") as handle:
            done.handle = handle
            items = parse_file(path, handle, spec, counter)
            lander.land(rates.process(items) if rates.active else items, tick=progress.tick)
        done.handle = None
        done.base += path.stat().st_size
        lander.report.file_done(str(path), counter.count - rows_before, lander.report.samples - samples_before)
        progress.tick()
    lander.finish()
    lander.report.duplicates = lander.duplicates.find()
    lander.report.complete = True
    progress.done()
