"""Writer: drains the durable buffer into InfluxDB in batches. The only retry loop for InfluxDB writes.

Outcome per batch (like telegraf's accept / reject / keep):
- 2xx: accept -> ack the batch in the buffer.
- 400/422 (bad data): bisect the batch until the bad line(s) are isolated; those go to the dead-letter
  file with InfluxDB's reason, everything else is written (InfluxDB 1.x already stores the good points of
  a partially bad batch; re-sending them is idempotent: same series + timestamp overwrites), then ack.
- 413 (too large): split in halves; a single line still too large is a dead letter.
- connection failure, 5xx, 429, 401/403, database not found: keep the batch; back off exponentially with
  full jitter up to retry_max_s, honouring Retry-After; log the state change (influx_down /
  influx_recovered with the outage length and backlog), not every attempt. A missing database is created.

While a backlog drains (batches come back full), `flush_backlog` keeps the network busy: on a second thread
it acks the batch just written and reads the next one while the current HTTP write is in flight, so the
buffer's SQLite time (read, delete, fsync) overlaps InfluxDB's answer instead of adding to it. An ack is at
most one batch late; a crash in between re-sends that batch, which is idempotent (same series + timestamp).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bess_common.errors import RejectedError, RetryableError
from bess_common.influx import AuthError, DatabaseNotFound, InfluxClient
from bess_common.logs import RepeatCounter, get_logger
from collector.buffer import Batch, DiskBuffer
from collector.deadletters import DeadLetter, DeadLetters, short_reason

STILL_DOWN_LOG_PERIOD_S = 300.0
BACKLOG_BATCHES_PER_CALL = 20  # bounds one flush_backlog call (~1 s at 5000 lines) so the loop stays live
_DROPPED = re.compile(r"dropped=(\d+)")


@dataclass(slots=True)
class WriterStats:
    """What the writer has done since start (for health metrics)."""

    written: int = 0
    rejected: int = 0
    batches: int = 0
    last_write_wall_ns: int = 0
    up: bool = True
    failures: dict[str, int] = field(default_factory=dict)


class Writer:
    """Moves lines from the buffer to InfluxDB; run() on its own thread, drain() at shutdown."""

    def __init__(
        self,
        buffer: DiskBuffer,
        client: InfluxClient,
        dead_letters: DeadLetters,
        *,
        batch_max_lines: int = 5000,
        retry_max_s: float = 30.0,
        flush_interval_s: float = 1.0,
        retry_min_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._buffer = buffer
        self._client = client
        self._dead = dead_letters
        self._batch_max = batch_max_lines
        self._retry_max_s = retry_max_s
        self._retry_min_s = min(retry_min_s, retry_max_s)
        self._flush_interval_s = flush_interval_s
        self._clock = clock
        self._beat = clock()
        self._wall_ns = wall_ns
        self._rng = rng
        self._sleep = sleep
        self._log = get_logger("writer")
        self._repeats = RepeatCounter(self._log)
        self._stats = WriterStats()
        self._failures_in_row = 0
        self._down_since: float | None = None
        self._down_reported = 0.0
        self._retry_at = 0.0
        self._backlog_left = False

    # -- one batch ----------------------------------------------------------------------------------------
    def flush_once(self) -> int:
        """Try one batch now; return how many lines InfluxDB accepted (0 if none waited or it failed)."""
        batch = self._buffer.peek(self._batch_max)
        if not batch.lines:
            self._backlog_left = False
            return 0
        try:
            written, rejected = self._deliver(batch.lines)
        except (RetryableError, AuthError) as exc:
            self._on_failure(exc)
            return 0
        self._dead.add(rejected)  # durable before the lines leave the buffer
        self._buffer.ack(batch)
        self._on_success(written, sum(len(r.lines) for r in rejected))
        self._backlog_left = len(batch.lines) >= self._batch_max
        return written

    def flush_backlog(self, max_batches: int = BACKLOG_BATCHES_PER_CALL) -> int:
        """Write up to `max_batches` batches back to back, the buffer's reads and acks overlapping each HTTP
        write (see the module doc); every batch written is acked on return. Lines InfluxDB accepted."""
        batch = self._buffer.peek(self._batch_max)
        total = 0
        settled: Batch | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="buffer-io") as io:
            for _ in range(max_batches):
                if not batch.lines:
                    self._backlog_left = False
                    break
                full = len(batch.lines) >= self._batch_max
                ahead = io.submit(self._ack_then_peek, settled, batch.ids[-1] if full else None)
                try:
                    written, rejected = self._deliver(batch.lines)
                except (RetryableError, AuthError) as exc:
                    ahead.result()  # the previous batch's ack still lands; the read-ahead is dropped
                    self._on_failure(exc)
                    return total
                self._dead.add(rejected)  # durable before the lines leave the buffer
                self._on_success(written, sum(len(r.lines) for r in rejected))
                total += written
                settled = batch
                self._backlog_left = full
                batch = ahead.result()
                if not full:
                    break
        if settled is not None:
            self._buffer.ack(settled)
        return total

    def _ack_then_peek(self, settled: Batch | None, after_id: int | None) -> Batch:
        if settled is not None:
            self._buffer.ack(settled)
        if after_id is None:
            return Batch((), [])
        return self._buffer.peek(self._batch_max, after_id=after_id)

    def _deliver(self, lines: list[str]) -> tuple[int, list[DeadLetter]]:
        """Write lines; isolate rejected ones by bisection. Raises on keep-class errors."""
        try:
            self._write(lines)
            return len(lines), []
        except RejectedError as exc:
            dropped = _DROPPED.search(str(exc))
            whole = dropped is not None and int(dropped.group(1)) >= len(lines) and exc.status != 413
            if len(lines) == 1 or whole:
                return 0, [DeadLetter(self._wall_ns(), exc.status, str(exc), list(lines))]
        mid = len(lines) // 2
        left_written, left_rejected = self._deliver(lines[:mid])
        right_written, right_rejected = self._deliver(lines[mid:])
        return left_written + right_written, _merge(left_rejected + right_rejected)

    def _write(self, lines: list[str]) -> None:
        try:
            self._client.write(lines)
        except DatabaseNotFound:
            if self._down_since is None:  # once per outage; influx_down/still_down report the rest
                self._log.warning(
                    "influx_database_missing",
                    database=self._client.settings.database,
                    action="creating it (on InfluxDB 2.x/3.x create the bucket yourself)",
                )
            self._client.create_database()
            self._client.write(lines)

    # -- outcomes -----------------------------------------------------------------------------------------
    def _on_success(self, written: int, rejected: int) -> None:
        now = self._clock()
        self._stats.written += written
        self._stats.rejected += rejected
        self._stats.batches += 1
        self._stats.last_write_wall_ns = self._wall_ns()
        if rejected:
            self._log.warning(
                "influx_rejected_lines",
                rejected=rejected,
                written=written,
                action="set aside in dead_letters.jsonl; see `bess-collector dead-letters list`",
            )
        if self._down_since is not None:
            self._log.info(
                "influx_recovered",
                outage_s=round(now - self._down_since, 1),
                attempts=self._failures_in_row,
                backlog=self._buffer.depth(),
            )
        self._down_since = None
        self._failures_in_row = 0
        self._retry_at = now
        self._stats.up = True

    def _on_failure(self, exc: Exception) -> None:
        now = self._clock()
        kind = "auth" if isinstance(exc, AuthError) else type(exc).__name__
        self._stats.failures[kind] = self._stats.failures.get(kind, 0) + 1
        self._failures_in_row += 1
        cap = min(self._retry_max_s, self._retry_min_s * 2 ** (self._failures_in_row - 1))
        delay = self._rng() * cap
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after:
            delay = max(delay, float(retry_after))
        self._retry_at = now + delay
        self._stats.up = False
        if self._down_since is None:
            self._down_since = now
            event = "influx_auth_failed" if kind == "auth" else "influx_down"
            log = self._log.error if kind == "auth" else self._log.warning
            log(event, error=str(exc), backlog=self._buffer.depth(), action="keeping data in the buffer; retrying")
            self._down_reported = now
        elif now - self._down_reported >= STILL_DOWN_LOG_PERIOD_S:
            self._down_reported = now
            self._log.warning(
                "influx_still_down",
                error=str(exc),
                outage_s=round(now - self._down_since, 1),
                attempts=self._failures_in_row,
                backlog=self._buffer.depth(),
            )

    # -- loops --------------------------------------------------------------------------------------------
    def next_delay_s(self) -> float:
        """Seconds to wait before the next attempt: backoff while failing, 0 with backlog, else the interval."""
        if self._down_since is not None:
            return max(0.0, self._retry_at - self._clock())
        return 0.0 if self._backlog_left else self._flush_interval_s

    def run(self, stop: threading.Event) -> None:
        """Flush until `stop` is set. Never dies on an unexpected error: it is logged and retried."""
        while not stop.is_set():
            self._beat = self._clock()
            try:
                if self._backlog_left:
                    self.flush_backlog()
                else:
                    self.flush_once()
                delay = self.next_delay_s()
            except Exception as exc:  # a bug or a buffer fault must not kill the thread silently
                self._repeats.hit("writer_error", "writer_error", error=repr(exc))
                delay = self._flush_interval_s
            if delay > 0:
                stop.wait(delay)

    def loop_age_s(self) -> float:
        """Seconds since the run loop last went round: a write stuck past its HTTP timeout shows here."""
        return self._clock() - self._beat

    def drain(self, deadline_s: float) -> bool:
        """Flush for at most `deadline_s` seconds (shutdown); True when the buffer is empty."""
        end = self._clock() + deadline_s
        while self._clock() < end:
            if self._buffer.depth() == 0:
                return True
            self.flush_backlog()
            wait = min(self.next_delay_s(), end - self._clock()) if self._down_since is not None else 0.0
            if wait > 0:
                self._sleep(wait)
        return self._buffer.depth() == 0

    def stats(self) -> WriterStats:
        """A copy of the counters."""
        s = self._stats
        return WriterStats(s.written, s.rejected, s.batches, s.last_write_wall_ns, s.up, dict(s.failures))


def _merge(entries: list[DeadLetter]) -> list[DeadLetter]:
    """Join neighbouring dead letters that share status and reason kind into one line group."""
    merged: list[DeadLetter] = []
    for entry in entries:
        last = merged[-1] if merged else None
        if last and last.status == entry.status and short_reason(last.reason) == short_reason(entry.reason):
            merged[-1] = DeadLetter(last.time_ns, last.status, last.reason, last.lines + entry.lines)
        else:
            merged.append(entry)
    return merged
