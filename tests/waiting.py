"""The suite's one wait: poll a condition until it holds, instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None],
    timeout_s: float = 8.0,
    what: str = "condition",
    *,
    poll_s: float = 0.02,
    max_poll_s: float = 0.25,
) -> T:
    """The first truthy value `check()` returns; AssertionError naming `what` after timeout_s.

    Polls every poll_s at first, backing off by half each time up to max_poll_s: a fast condition is seen
    at once, a slow one (a query to InfluxDB, a restart) does not load the machine while it waits.
    """
    deadline = time.monotonic() + timeout_s
    pause = poll_s
    while True:
        value = check()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(min(pause, left))
        pause = min(pause * 1.5, max(max_poll_s, poll_s))
