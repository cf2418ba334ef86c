"""Hold-last-value: carried over at most N empty buckets, never through a recorded outage."""

from __future__ import annotations

import numpy as np
import pytest

from forecaster.backtest.hold import hold_last, outage_buckets

N = np.nan
S = 10**9  # one-second buckets below: times in ns are seconds * S


@pytest.mark.parametrize(
    ("values", "steps", "blocked", "expected"),
    [
        ([1, N, N, N, 2], 0, None, [1, N, N, N, 2]),  # off
        ([1, N, N, N, 2], 2, None, [1, 1, 1, N, 2]),  # at most 2 buckets
        ([N, N, 1, N], 5, None, [N, N, 1, 1]),  # nothing before the first value
        ([1, N, N, N, 2], 9, [0, 0, 1, 0, 0], [1, 1, N, N, 2]),  # an outage ends the hold, for good
        ([1, N, N, 2, N], 9, [0, 1, 1, 1, 0], [1, N, N, 2, 2]),  # the value after the outage holds again
        ([1, N, 3, N, N], 9, [1, 1, 1, 0, 0], [1, N, 3, 3, 3]),  # a finite bucket in an outage keeps its value
    ],
)
def test_when_holding_then_values_carry_only_where_the_recording_says_they_held(
    values: list[float], steps: int, blocked: list[int] | None, expected: list[float]
) -> None:
    mask = None if blocked is None else np.array(blocked, dtype=bool)
    np.testing.assert_array_equal(hold_last(np.array(values, dtype=float), steps, mask), np.array(expected))


@pytest.mark.parametrize(
    ("outages", "values", "expected"),
    [
        ([], [1, N, N, N], [0, 0, 0, 0]),
        ([(1 * S + S // 2, 1.0)], [1, N, N, N], [0, 1, 1, 0]),  # 1.5 s .. 2.5 s touches buckets 1 and 2
        ([(1 * S, 2.0)], [1, N, N, N], [0, 1, 1, 0]),  # 1 s .. 3 s: buckets 1 and 2, not 3
        ([(1 * S, None)], [1, N, N, 4, N], [0, 1, 1, 0, 0]),  # no duration: up to the next value
        ([(1 * S, None)], [1, N, N], [0, 1, 1]),  # ... or the end
        ([(-5 * S, 6.5)], [N, N, N], [1, 1, 0]),  # began before the grid
        ([(9 * S, 1.0)], [1, N, N], [0, 0, 0]),  # after the grid
    ],
)
def test_when_outages_are_recorded_then_the_buckets_they_touch_are_blocked(
    outages: list[tuple[int, float | None]], values: list[float], expected: list[int]
) -> None:
    got = outage_buckets(outages, np.array(values, dtype=float), start_ns=0, step_ns=S)
    np.testing.assert_array_equal(got, np.array(expected, dtype=bool))
