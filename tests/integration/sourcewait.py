"""Test helpers for the GX sources: a collecting sink, polling waits, "start a source, wait for its first
events, stop it on the way out" as one context manager, and `with` for start/stop test doubles."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Self

from collector.observation import Confirm, Event, Source
from tests.waiting import wait_until


class StartStop:
    """`with thing:` for a test double with start() and stop() (stopped on the way out, whatever happened)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class Collected:
    """An ObservationSink that keeps every event it is handed (thread-safe); with fail_first=N its first
    N calls raise instead (a sink bug the source must survive) and those events are not kept."""

    def __init__(self, fail_first: int = 0) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self._failures_left = fail_first

    def __call__(self, events: list[Event]) -> None:
        with self._lock:
            if self._failures_left > 0:
                self._failures_left -= 1
                raise RuntimeError("grid bug")
            self.events.extend(events)

    def snapshot(self) -> list[Event]:
        """A copy of the events so far."""
        with self._lock:
            return list(self.events)

    def clear(self) -> None:
        """Forget the events so far."""
        with self._lock:
            self.events.clear()

    def wait_for(self, predicate: Callable[[list[Event]], bool], timeout_s: float = 8.0) -> list[Event]:
        """The events once `predicate(events)` holds; AssertionError after timeout_s."""
        found: list[list[Event]] = []

        def holds() -> bool:
            found[:] = [self.snapshot()]
            return predicate(found[0])

        wait_until(holds, timeout_s, "a condition on the source's events", max_poll_s=0.02)
        return found[0]


def confirmed(events: list[Event]) -> bool:
    """True once a Confirm (the MQTT heartbeat vouching for held values) has arrived."""
    return any(isinstance(e, Confirm) for e in events)


@contextmanager
def started(
    source: Source,
    until: Callable[[list[Event]], bool] | None = None,
    timeout_s: float = 8.0,
    sink: Collected | None = None,
) -> Iterator[tuple[Collected, list[Event]]]:
    """Start `source` into `sink` (a fresh Collected by default), wait until `until(events)` holds (not at
    all when None), yield the sink and those events; the source is stopped on the way out, whatever happened."""
    sink = sink if sink is not None else Collected()
    source.start(sink)
    try:
        events = sink.wait_for(until, timeout_s) if until is not None else []
        yield sink, events
    finally:
        source.stop()
