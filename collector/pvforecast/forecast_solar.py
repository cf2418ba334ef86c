"""Forecast.Solar's `estimate` API: the request URL and the response -> PvForecastIssue (pure).

Documented at doc.forecast.solar (pages `api`, `api:estimate`, `for_developers`; docs/pv-forecast.md cites
them): GET <base>/estimate/:lat/:lon/:dec/:az/:kwp, with `dec` the tilt (0 horizontal .. 90 vertical) and
`az` the azimuth (-180 .. 180; -90 east, 0 south, 90 west). The JSON answer holds `result` (series keyed by
timestamp) and `message` (`code` 0 on success, `info.timezone`, `ratelimit`). Timestamps are the site's
LOCAL time unless `?time=utc` is asked for; we ask for it, and still read the other documented formats
(ISO 8601 with an offset, Unix seconds, and naive local time with `message.info.timezone`).

`result.watt_hours_period` at time T is the energy of the period ending at T (since the previous timestamp;
the day's first timestamp is sunrise with 0 Wh). The series is hourly (finer on paid plans) between sunrise
and sunset, the first and last periods of a day being partial. Each period's energy is put in the regular
period it falls in (a partial first/last one is the whole period's energy: there is no sun outside it), and
nights are filled with 0 Wh, so an issue is a contiguous series of `period_s` periods whose power_w is the
mean power (energy / period length).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bess_common.errors import FatalError, RejectedError, RetryableError
from collector.pvforecast.issue import PvForecastIssue, PvPeriod

PROVIDER = "forecast_solar"
NS = 1_000_000_000
PERIODS_S = (900, 1800, 3600)


def estimate_url(
    base_url: str, *, latitude: float, longitude: float, tilt_deg: float, azimuth_deg: float, kwp: float
) -> str:
    """The estimate request (public plan), timestamps in UTC."""
    parts = [f"{latitude:.4f}", f"{longitude:.4f}", str(round(tilt_deg)), str(round(azimuth_deg)), f"{kwp:g}"]
    return f"{base_url.rstrip('/')}/estimate/{'/'.join(quote(p) for p in parts)}?time=utc"


def parse_estimate(body: bytes, received_ns: int, provider: str = PROVIDER) -> PvForecastIssue:
    """The issue in a 200 answer; RejectedError (with what is wrong) for anything not in the documented form."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RejectedError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("result"), dict):
        raise RejectedError("no `result` object")
    series = doc["result"].get("watt_hours_period")
    if not isinstance(series, dict) or not series:
        raise RejectedError("no `result.watt_hours_period` series")
    zone = _zone(doc.get("message"))
    points = sorted(_point(key, value, zone) for key, value in series.items())
    if len({t for t, _ in points}) != len(points):
        raise RejectedError("duplicate timestamps")
    return PvForecastIssue(provider, received_ns, _periods(points))


def _zone(message: Any) -> dt.tzinfo | None:
    info = message.get("info") if isinstance(message, dict) else None
    name = info.get("timezone") if isinstance(info, dict) else None
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RejectedError(f"unknown time zone {name!r}") from None


def _point(key: Any, value: Any, zone: dt.tzinfo | None) -> tuple[int, float]:
    """(UTC seconds, Wh) of one series entry."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise RejectedError(f"energy at {key!r} is not a non-negative number: {value!r}")
    return _utc_s(str(key), zone), float(value)


def _utc_s(text: str, zone: dt.tzinfo | None) -> int:
    if text.isdigit():  # ?time=seconds
        return int(text)
    try:
        stamp = dt.datetime.fromisoformat(text)  # "2024-04-26T07:00:00+02:00", "2024-04-26 07:00:00"
    except ValueError:
        raise RejectedError(f"unreadable timestamp {text!r}") from None
    if stamp.tzinfo is None:
        if zone is None:
            raise RejectedError(f"local timestamp {text!r} without message.info.timezone")
        stamp = stamp.replace(tzinfo=zone)
    return int(stamp.timestamp())


def _period_s(points: list[tuple[int, float]]) -> int:
    gaps = Counter(b[0] - a[0] for a, b in itertools.pairwise(points) if b[0] - a[0] in PERIODS_S)
    if not gaps:
        if len(points) == 1:
            return 3600
        raise RejectedError("no regular step (15, 30 or 60 min) between the timestamps")
    return max(gaps.items(), key=lambda kv: (kv[1], kv[0]))[0]


def _periods(points: list[tuple[int, float]]) -> tuple[PvPeriod, ...]:
    step = _period_s(points)
    energy: dict[int, float] = {}
    prev: int | None = None
    for t, wh in points:
        if prev is not None and t - prev <= step:
            start = prev
        elif wh == 0.0:  # a day's first point (sunrise): no energy before it
            prev = t
            continue
        else:
            start = t - step  # energy without a previous point: the period ending there
        for bucket, share in _overlaps(start, t, step):
            energy[bucket] = energy.get(bucket, 0.0) + wh * share
        prev = t
    if not energy:  # a day without sun (polar night, or every value 0): zeros over the span sent
        energy = {t // step * step: 0.0 for t in (points[0][0], max(points[0][0], points[-1][0] - 1))}
    first, last = min(energy), max(energy)
    return tuple(
        PvPeriod(b * NS, step, round(energy.get(b, 0.0) * 3600.0 / step, 3)) for b in range(first, last + step, step)
    )


def _overlaps(start: int, end: int, step: int) -> list[tuple[int, float]]:
    """The regular periods [start, end) touches, with the share of its length in each."""
    out = []
    bucket = start // step * step
    while bucket < end:
        overlap = min(end, bucket + step) - max(start, bucket)
        out.append((bucket, overlap / (end - start)))
        bucket += step
    return out


def check_answer(status: int, headers: Mapping[str, str], body: bytes, now_s: int) -> None:
    """Classify a non-200 answer: 429 and 5xx are retryable (with the server's retry time), any other is refused
    (FatalError: the plane, the location or the key is wrong; the service's own text says which)."""
    if status == 200:
        return
    text = _message_text(body)
    if status == 429:
        raise RetryableError(f"http 429: rate limited{text}", retry_after_s=_retry_after_s(headers, body, now_s))
    if status >= 500 or status == 408:
        raise RetryableError(f"http {status}: server error{text}", retry_after_s=_retry_after_s(headers, b"", now_s))
    raise FatalError(f"http {status}: the service refused the request{text}")


def _message_text(body: bytes) -> str:
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return ""
    text = message.get("text") if isinstance(message, dict) else message
    return f" ({text})" if isinstance(text, str) and text else ""


def _retry_after_s(headers: Mapping[str, str], body: bytes, now_s: int) -> float | None:
    """Seconds to wait: the Retry-After header, else the 429 body's `message.ratelimit.retry-at` (ISO time)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    try:
        at = json.loads(body)["message"]["ratelimit"]["retry-at"]
        return max(0.0, dt.datetime.fromisoformat(at).timestamp() - now_s)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def quota_wait_s(headers: Mapping[str, str], body: bytes) -> float | None:
    """After a good answer: seconds until the quota allows another call when this one used the last of it
    (`X-Ratelimit-Remaining: 0` or `message.ratelimit.remaining` 0), from `X-Ratelimit-Reset` or the
    ratelimit `period`; None while calls are left."""
    lowered = {k.lower(): v for k, v in headers.items()}
    remaining: object = lowered.get("x-ratelimit-remaining")
    limit: dict[str, Any] = {}
    try:
        found = json.loads(body)["message"]["ratelimit"]
        limit = found if isinstance(found, dict) else {}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        pass
    if remaining is None:
        remaining = limit.get("remaining")
    if str(remaining).strip() != "0":
        return None
    for value in (lowered.get("x-ratelimit-reset"), limit.get("period")):
        try:
            return max(0.0, float(value))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
    return 3600.0  # the public plan's window
