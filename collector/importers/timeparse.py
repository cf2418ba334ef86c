"""Timestamps of recorded files -> integer nanoseconds since the epoch, UTC. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
EPOCH_FORMATS = {"epoch_s": 1_000_000_000, "epoch_ms": 1_000_000, "epoch_us": 1_000, "epoch_ns": 1}


def datetime_to_ns(moment: datetime) -> int:
    """An aware datetime -> integer ns since the epoch (exact to the microsecond, no float rounding)."""
    return ((moment - EPOCH) // _US) * 1000


def zone(name: str) -> tzinfo:
    """`UTC` or an IANA zone name; ValueError with a plain message otherwise."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use UTC or an IANA name like Europe/Madrid)") from None


def parse_timestamp(text: str, time_format: str = "iso", tz: tzinfo = UTC) -> int:
    """Parse one timestamp; naive times are read in `tz`. ValueError if it does not parse.

    time_format: `iso` (ISO-8601, `Z` allowed), `epoch_s` / `epoch_ms` / `epoch_us` / `epoch_ns`
    (numbers, always UTC), or a `strptime` pattern such as `%d/%m/%Y %H:%M`.
    """
    text = text.strip()
    if not text:
        raise ValueError("empty timestamp")
    if time_format in EPOCH_FORMATS:
        try:
            return int(Decimal(text) * EPOCH_FORMATS[time_format])
        except InvalidOperation:
            raise ValueError(f"not a number: {text!r}") from None
    moment = datetime.fromisoformat(text) if time_format == "iso" else datetime.strptime(text, time_format)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return datetime_to_ns(moment)
