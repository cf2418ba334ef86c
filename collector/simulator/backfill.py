"""Write simulated history into InfluxDB in batches, with progress and bounded retries (idempotent)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bess_common.backoff import Backoff
from bess_common.errors import RetryableError
from bess_common.influx import InfluxClient
from bess_common.lineproto import to_lines
from bess_common.sample import Sample

BATCH_LINES = 5000


@dataclass(frozen=True, slots=True)
class BackfillStatus:
    """Where a backfill stands."""

    points: int
    done_fraction: float
    points_per_s: float


def write_batches(
    client: InfluxClient,
    samples: Iterable[Sample],
    start_ns: int,
    end_ns: int,
    on_progress: Callable[[BackfillStatus], None],
    *,
    batch_lines: int = BATCH_LINES,
    max_attempts: int = 6,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Write every sample (same timestamps overwrite: re-running is idempotent); returns points written.

    RetryableError is retried with backoff up to `max_attempts` per batch; other errors propagate.
    """
    started = time.monotonic()
    written = 0
    batch: list[Sample] = []
    last_report = started
    for sample in samples:
        batch.append(sample)
        if len(batch) >= batch_lines:
            written += _write(client, batch, max_attempts, sleep)
            now = time.monotonic()
            if now - last_report >= 2.0:
                last_report = now
                on_progress(_progress(written, sample.ts_ns, start_ns, end_ns, now - started))
            batch = []
    if batch:
        written += _write(client, batch, max_attempts, sleep)
    on_progress(BackfillStatus(written, 1.0, written / max(time.monotonic() - started, 1e-9)))
    return written


def _progress(points: int, ts_ns: int, start_ns: int, end_ns: int, elapsed_s: float) -> BackfillStatus:
    span = max(end_ns - start_ns, 1)
    return BackfillStatus(points, min(1.0, (ts_ns - start_ns) / span), points / max(elapsed_s, 1e-9))


def _write(client: InfluxClient, batch: list[Sample], max_attempts: int, sleep: Callable[[float], None]) -> int:
    lines = to_lines(batch)
    backoff = Backoff(initial_s=0.5, max_s=10.0)
    while True:
        try:
            client.write(lines)
            return len(lines)
        except RetryableError as exc:
            if backoff.attempts + 1 >= max_attempts:
                raise
            delay = backoff.next_delay()
            sleep(max(delay, exc.retry_after_s or 0.0))
