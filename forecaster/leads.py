"""Lead times: the exact lead as a duration string and the lead bucket (the buckets are data)."""

from __future__ import annotations

import math

# (label, upper bound in seconds, inclusive). A lead falls in the first bucket whose bound it does not exceed.
LEAD_BUCKETS: tuple[tuple[str, float], ...] = (
    ("0-15m", 15 * 60),
    ("15-30m", 30 * 60),
    ("30-60m", 60 * 60),
    ("1-6h", 6 * 3600),
    ("6-24h", 24 * 3600),
    (">24h", math.inf),
)


def lead_bucket(lead_s: float) -> str:
    """The bucket label of a lead in seconds."""
    for label, upper_s in LEAD_BUCKETS:
        if lead_s <= upper_s:
            return label
    return LEAD_BUCKETS[-1][0]


def lead_label(lead_s: int) -> str:
    """Exact lead as a compact duration: 300 -> '5m', 5400 -> '90m', 7200 -> '2h', 45 -> '45s'."""
    if lead_s % 3600 == 0:
        return f"{lead_s // 3600}h"
    if lead_s % 60 == 0:
        return f"{lead_s // 60}m"
    return f"{lead_s}s"
