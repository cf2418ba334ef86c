"""Exponential backoff with jitter: the one retry schedule of the GX sources and of the wait for InfluxDB (pure)."""

from __future__ import annotations

import random


class Backoff:
    """Delays initial_s, 2x, 4x ... capped at max_s, each drawn from [d/2, d] (equal jitter)."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 30.0, rng: random.Random | None = None) -> None:
        self._initial_s = initial_s
        self._max_s = max_s
        self._rng = rng or random.Random()
        self._attempt = 0

    @property
    def attempts(self) -> int:
        """Failures since the last reset."""
        return self._attempt

    def next_delay(self) -> float:
        """The delay before the next attempt; grows with each call until reset()."""
        delay = min(self._max_s, self._initial_s * (2**self._attempt))
        self._attempt += 1
        return delay / 2 + self._rng.random() * delay / 2

    def reset(self) -> None:
        """Back to the initial delay (after a success)."""
        self._attempt = 0
