"""The one way timestamps are shown to people: ISO-8601 in UTC with a Z. Pure."""

from __future__ import annotations

import time

NS = 1_000_000_000


def iso_utc(ts_ns: int, decimals: int = 0, *, trim: bool = False) -> str:
    """Integer-nanosecond UTC -> '2024-01-01T12:00:00Z', with `decimals` (0..9) digits of the second
    ('...:00.250Z' for 3); `trim` drops trailing zeros of the fraction (and the dot when nothing is left)."""
    if not 0 <= decimals <= 9:
        raise ValueError(f"decimals must be 0..9, got {decimals}")
    seconds, fraction_ns = divmod(int(ts_ns), NS)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    digits = f"{fraction_ns:09d}"[:decimals]
    if trim:
        digits = digits.rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"
