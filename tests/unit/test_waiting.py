"""tests.waiting.wait_until: returns what the condition found, as soon as it holds; names it on timeout."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.waiting import wait_until


def test_returns_the_first_truthy_value_as_soon_as_it_appears() -> None:
    calls: list[float] = []

    def check() -> list[int] | None:
        calls.append(time.monotonic())
        return [len(calls)] if len(calls) >= 3 else None

    started = time.monotonic()
    assert wait_until(check, timeout_s=5) == [3]
    assert time.monotonic() - started < 1.0


def test_names_what_it_waited_for_after_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"timed out after 0.3s waiting for the broker"):
        wait_until(lambda: False, 0.3, "the broker")
    assert 0.3 <= time.monotonic() - started < 1.5


def test_backs_off_to_max_poll_s_for_slow_conditions() -> None:
    stamps: list[float] = []
    with pytest.raises(AssertionError):
        wait_until(lambda: stamps.append(time.monotonic()), 1.2, poll_s=0.02, max_poll_s=0.25)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert gaps[0] < 0.1
    assert max(gaps) < 0.4 and sum(g > 0.2 for g in gaps) >= 2
    assert len(stamps) < 20  # a fixed 20 ms poll would have made ~60 calls
