"""Landing parsed samples in InfluxDB through the live collector's durable buffer and writer.

Samples are serialised with bess_common.lineproto and appended to a DiskBuffer in chunks; the Writer
drains it (the one InfluxDB retry loop). Back-pressure: once the buffer holds `high_water_lines`, parsing
waits until the writer brought it under `low_water_lines`, so a long file never fills (and never makes
the drop-oldest policy discard) the buffer. If InfluxDB cannot take data for `stall_deadline_s`, the
import stops; what was buffered stays there and the next run (same buffer directory) writes it first.
Re-importing is idempotent: the same series and timestamps overwrite. Within one import such repeats are
found (collector.importers.duplicates) and reported. What a previous, interrupted run left in the buffer
is written first (`resume`) and counted apart, so the summary never counts a point twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bess_common.lineproto import to_lines
from bess_common.sample import Sample
from collector.buffer import DiskBuffer
from collector.importers.duplicates import DuplicateFinder
from collector.importers.records import Parsed
from collector.importers.report import ImportReport
from collector.sink import Writer


class ImportStalled(Exception):
    """InfluxDB did not take data within the deadline; the buffer keeps the rest."""


@dataclass(frozen=True)
class LandingLimits:
    """Chunking and back-pressure knobs."""

    chunk_lines: int = 5000
    high_water_lines: int = 50_000
    low_water_lines: int = 10_000
    stall_deadline_s: float = 120.0


class Lander:
    """Feeds parsed items into the buffer and keeps the writer draining it."""

    def __init__(
        self,
        buffer: DiskBuffer,
        writer: Writer,
        report: ImportReport,
        *,
        limits: LandingLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._buffer = buffer
        self._writer = writer
        self.report = report
        self._limits = limits or LandingLimits()
        self._clock = clock
        self._sleep = sleep
        self._pending: list[Sample] = []
        self.duplicates = DuplicateFinder()
        self._resumed = (0, 0)  # (written, rejected) of the leftover of an interrupted run

    def resume(self) -> None:
        """Write what an interrupted run left in the buffer; its counts go apart from this run's."""
        self.drain_to(0)
        stats = self._writer.stats()
        self._resumed = (stats.written, stats.rejected)
        self.report.lines_resumed, self.report.rejected_resumed = self._resumed
        self._sync_counts()

    def land(self, items: Iterable[tuple[str, Parsed]], tick: Callable[[], None] | None = None) -> None:
        """Consume (file, item) pairs: samples to the buffer (in chunks), problems to the report."""
        for file, item in items:
            if isinstance(item, Sample):
                self._pending.append(item)
                self.duplicates.add(item, file)
                self.report.samples += 1
                if len(self._pending) >= self._limits.chunk_lines:
                    self._append()
                    if tick is not None:
                        tick()
            else:
                self.report.note(item, file)
        self._append()

    def _append(self) -> None:
        if not self._pending:
            return
        lines = to_lines(self._pending)
        self._pending = []
        if lines:
            self._buffer.append(lines)
            self.report.lines_buffered += len(lines)
        if self._buffer.depth() >= self._limits.high_water_lines:
            self.drain_to(self._limits.low_water_lines)

    def drain_to(self, depth: int) -> None:
        """Flush until the buffer holds at most `depth` lines; ImportStalled after the stall deadline."""
        stalled_since: float | None = None
        while self._buffer.depth() > depth:
            written = self._writer.flush_backlog()
            self._sync_counts()
            if written or self._writer.stats().up:
                stalled_since = None
                continue
            now = self._clock()
            stalled_since = now if stalled_since is None else stalled_since
            if now - stalled_since >= self._limits.stall_deadline_s:
                raise ImportStalled(f"InfluxDB took no data for {self._limits.stall_deadline_s:g} s")
            self._sleep(max(0.05, min(self._writer.next_delay_s(), self._limits.stall_deadline_s)))

    def finish(self) -> None:
        """Append what is pending and drain the buffer completely."""
        self._append()
        self.drain_to(0)

    def _sync_counts(self) -> None:
        stats = self._writer.stats()
        self.report.lines_written = stats.written - self._resumed[0]
        self.report.lines_rejected = stats.rejected - self._resumed[1]
