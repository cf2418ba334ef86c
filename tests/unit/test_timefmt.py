"""bess_common.timefmt: the one ISO-8601 UTC format shown to people."""

from __future__ import annotations

import pytest

from bess_common.timefmt import iso_utc

T = 1_704_110_400 * 10**9  # 2024-01-01T12:00:00Z


@pytest.mark.parametrize(
    ("ts_ns", "decimals", "trim", "expected"),
    [
        (T, 0, False, "2024-01-01T12:00:00Z"),
        (T + 999_999_999, 0, False, "2024-01-01T12:00:00Z"),  # truncated, never rounded into the next second
        (T + 250_000_000, 3, False, "2024-01-01T12:00:00.250Z"),
        (T + 250_000_000, 9, True, "2024-01-01T12:00:00.25Z"),
        (T, 9, True, "2024-01-01T12:00:00Z"),
        (T + 7, 9, True, "2024-01-01T12:00:00.000000007Z"),
        (-(10**9) + 500_000_000, 3, False, "1969-12-31T23:59:59.500Z"),
    ],
)
def test_iso_utc(ts_ns: int, decimals: int, trim: bool, expected: str) -> None:
    assert iso_utc(ts_ns, decimals, trim=trim) == expected


def test_iso_utc_rejects_more_than_nanoseconds() -> None:
    with pytest.raises(ValueError, match=r"decimals must be 0\.\.9"):
        iso_utc(T, 10)
