"""The thread lifecycle both GX sources share: start/stop of one daemon loop thread, the counters
behind a lock, and the loop heartbeat the watchdog reads (`loop_age_s`).

A subclass implements `_run(sink)` (the loop; it calls `_beat()` each time round and returns when
`_stop` is set) and `state()`; it names the RepeatCounters whose kinds show up in `counters()`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from bess_common.logs import RepeatCounter
from collector.observation import ObservationSink, SourceState


class ThreadedSource:
    """Base of a Source whose work runs on one daemon thread (see collector.observation.Source)."""

    name: str
    thread_name: str

    def __init__(self, counts: Mapping[str, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict(counts or {})
        self._repeat_counters: dict[str, RepeatCounter] = {}  # prefix -> counter, shown in counters()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beat_mono = time.monotonic()

    # --- Source protocol -------------------------------------------------------------------------
    def start(self, sink: ObservationSink) -> None:
        """Start the loop on a daemon thread (returns at once)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(sink,), name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the loop (it closes its connection on the way out) and join the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def state(self) -> dict[str, SourceState]:
        """Per-role connection state (the subclass knows its roles)."""
        raise NotImplementedError

    def counters(self) -> dict[str, int]:
        """The source's counts, plus each RepeatCounter's kinds as `<prefix>_<kind>` (health metrics)."""
        with self._lock:
            out = dict(self._counts)
        for prefix, counter in self._repeat_counters.items():
            out.update({f"{prefix}_{kind}": n for kind, n in counter.count().items()})
        return out

    def loop_age_s(self) -> float:
        """Seconds since the loop last went round (the watchdog's proof that it is not hung)."""
        return time.monotonic() - self._beat_mono

    # --- for the subclass ------------------------------------------------------------------------
    def _run(self, sink: ObservationSink) -> None:
        raise NotImplementedError

    def _beat(self) -> None:
        """Mark one more round of the loop (read by loop_age_s)."""
        self._beat_mono = time.monotonic()

    def _bump(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n
