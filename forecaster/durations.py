"""Durations as the config writes them ('30s', '5m', '1h', '1d'). Pure."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(text: str) -> int:
    """'5m' -> 300. Accepts <int><s|m|h|d>; raises ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"not a duration like 30s, 5m, 1h, 1d: {text!r}")
    return int(match.group(1)) * _UNIT_S[match.group(2)]
