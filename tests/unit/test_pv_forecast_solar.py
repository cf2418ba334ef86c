"""Forecast.Solar estimate answers -> pv_forecast periods: time formats, partial sunrise/sunset periods, nights,
and the malformed answers that are rejected (table tests, pure).

The fixture tests/fixtures/forecast_solar_estimate.json is written from Forecast.Solar's documentation (pages
`api` and `api:estimate` at doc.forecast.solar: `result.watt_hours_period`, `message.info.timezone`,
`message.ratelimit`) in its `?time=iso8601` form (local time with the offset); `?time=utc` gives the same
document with +00:00 offsets.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from bess_common.errors import FatalError, RejectedError, RetryableError
from collector.pvforecast.forecast_solar import check_answer, estimate_url, parse_estimate, quota_wait_s

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "forecast_solar_estimate.json"
NS = 10**9
RECEIVED_NS = 1_762_676_000 * NS


def _utc_ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * NS


def _doc(series: dict[str, Any], timezone: str | None = "Europe/Berlin") -> bytes:
    message: dict[str, Any] = {"code": 0, "type": "success", "text": ""}
    if timezone:
        message["info"] = {"timezone": timezone}
    return json.dumps({"result": {"watt_hours_period": series}, "message": message}).encode()


def test_when_the_documented_answer_then_hourly_utc_periods_with_mean_power_and_zero_nights() -> None:
    issue = parse_estimate(FIXTURE.read_bytes(), RECEIVED_NS)
    assert issue.provider == "forecast_solar" and issue.issued_ns == RECEIVED_NS
    periods = {p.target_ns: p.power_w for p in issue.periods}
    starts = [p.target_ns for p in issue.periods]
    assert starts == list(range(starts[0], starts[-1] + 3600 * NS, 3600 * NS))  # contiguous, hourly
    assert {p.period_s for p in issue.periods} == {3600}
    assert starts[0] == _utc_ns("2025-11-09T06:00:00+00:00")  # sunrise 07:23:41 +01:00 -> the 06:00Z hour
    assert periods[_utc_ns("2025-11-09T06:00:00+00:00")] == 115.0  # 115 Wh from sunrise to 08:00 local
    assert periods[_utc_ns("2025-11-09T10:00:00+00:00")] == 1122.0  # Wh of the period ending 12:00 local
    assert periods[_utc_ns("2025-11-09T15:00:00+00:00")] == 12.0  # 16:00 -> sunset 16:41:05 local
    assert periods[_utc_ns("2025-11-09T23:00:00+00:00")] == 0.0  # night: present, 0 W
    assert starts[-1] == _utc_ns("2025-11-10T15:00:00+00:00")
    assert len(starts) == 34
    assert sum(p.power_w for p in issue.periods) == 5856 + 2918  # the two watt_hours_day totals


SERIES_CASES = {
    "utc offsets (?time=utc)": (
        {"2025-06-21T03:50:00+00:00": 0, "2025-06-21T04:00:00+00:00": 10, "2025-06-21T05:00:00+00:00": 300},
        None,
        [("2025-06-21T03:00:00+00:00", 10.0), ("2025-06-21T04:00:00+00:00", 300.0)],
    ),
    "unix seconds (?time=seconds)": (
        {"1750478400": 0, "1750482000": 250, "1750485600": 500},
        None,
        [("2025-06-21T04:00:00+00:00", 250.0), ("2025-06-21T05:00:00+00:00", 500.0)],
    ),
    "naive local time, summer (default format)": (
        {"2025-06-21 05:10:00": 0, "2025-06-21 06:00:00": 40, "2025-06-21 07:00:00": 350},
        "Europe/Berlin",
        [("2025-06-21T03:00:00+00:00", 40.0), ("2025-06-21T04:00:00+00:00", 350.0)],
    ),
    "naive local time across the autumn clock change": (
        {"2025-10-25 16:00:00": 100, "2025-10-25 17:00:00": 20, "2025-10-26 08:00:00": 0, "2025-10-26 09:00:00": 60},
        "Europe/Berlin",
        # 25 Oct is +02:00, 26 Oct is +01:00: 16:00 local = 14:00Z, then 09:00 local = 08:00Z
        [("2025-10-25T13:00:00+00:00", 100.0), ("2025-10-25T14:00:00+00:00", 20.0)]
        + [(f"2025-10-25T{h:02d}:00:00+00:00", 0.0) for h in range(15, 24)]
        + [(f"2025-10-26T{h:02d}:00:00+00:00", 0.0) for h in range(0, 7)]
        + [("2025-10-26T07:00:00+00:00", 60.0)],
    ),
    "quarter hours (paid plans): mean power is 4 x the Wh": (
        {"2025-06-21T10:00:00+00:00": 0, "2025-06-21T10:15:00+00:00": 500, "2025-06-21T10:30:00+00:00": 520},
        None,
        [("2025-06-21T10:00:00+00:00", 2000.0), ("2025-06-21T10:15:00+00:00", 2080.0)],
    ),
    "a day with no sun at all": (
        {"2025-12-21T10:00:00+00:00": 0, "2025-12-21T11:00:00+00:00": 0},
        None,
        [("2025-12-21T10:00:00+00:00", 0.0)],
    ),
}


@pytest.mark.parametrize("series, zone, expected", SERIES_CASES.values(), ids=SERIES_CASES.keys())
def test_when_a_documented_time_format_then_the_utc_periods_are_right(
    series: dict[str, Any], zone: str | None, expected: list[tuple[str, float]]
) -> None:
    issue = parse_estimate(_doc(series, zone), RECEIVED_NS)
    assert [(p.target_ns, p.power_w) for p in issue.periods] == [(_utc_ns(t), w) for t, w in expected]


REJECTED = {
    "not JSON": (b"<html>502 Bad Gateway</html>", "not JSON"),
    "error answer (result null)": (b'{"result": null, "message": {"code": 422, "type": "error"}}', "no `result`"),
    "no series": (b'{"result": {"watts": {}}, "message": {}}', "watt_hours_period"),
    "negative energy": (_doc({"2025-06-21T10:00:00+00:00": -5}), "non-negative"),
    "text energy": (_doc({"2025-06-21T10:00:00+00:00": "5"}), "non-negative"),
    "unreadable time": (_doc({"yesterday noon": 5}), "unreadable timestamp"),
    "local time without a zone": (_doc({"2025-06-21 10:00:00": 5}, None), "without message.info.timezone"),
    "unknown zone": (_doc({"2025-06-21 10:00:00": 5}, "Mars/Olympus"), "unknown time zone"),
    "irregular steps": (_doc({"2025-06-21T10:00:00+00:00": 1, "2025-06-21T10:07:00+00:00": 1}), "regular step"),
}


@pytest.mark.parametrize("body, problem", REJECTED.values(), ids=REJECTED.keys())
def test_when_the_answer_is_malformed_then_rejected_with_what_is_wrong(body: bytes, problem: str) -> None:
    with pytest.raises(RejectedError, match=problem.replace("`", ".").replace("(", ".")):
        parse_estimate(body, RECEIVED_NS)


def test_when_building_the_request_then_the_documented_path_in_utc() -> None:
    url = estimate_url(
        "https://api.forecast.solar/", latitude=51.31271, longitude=9.47972, tilt_deg=30.4, azimuth_deg=-12.6, kwp=4.2
    )
    assert url == "https://api.forecast.solar/estimate/51.3127/9.4797/30/-13/4.2?time=utc"


NOW_S = 1_762_675_200  # 2025-11-09T08:00:00Z
RATE_LIMITED = (FIXTURE.parent / "forecast_solar_ratelimit.json").read_bytes()  # retry-at 09:48:53 +01:00

ANSWERS = {
    "ok": (200, {}, b"{}", None, None),
    "429: the body's retry-at": (429, {}, RATE_LIMITED, RetryableError, 48 * 60 + 53.0),
    "429: Retry-After wins": (429, {"Retry-After": "120"}, RATE_LIMITED, RetryableError, 120.0),
    "429 without a retry time": (429, {}, b"", RetryableError, None),
    "500": (500, {}, b'{"message": {"text": "oops"}}', RetryableError, None),
    "503 maintenance with Retry-After": (503, {"retry-after": "600"}, b"", RetryableError, 600.0),
    "400 bad plane": (400, {}, b'{"message": {"code": 400, "text": "Invalid declination"}}', FatalError, None),
    "404 malformed URL": (404, {}, b"", FatalError, None),
    "401 bad key": (401, {}, b"", FatalError, None),
}


@pytest.mark.parametrize("status, headers, body, error, retry_s", ANSWERS.values(), ids=ANSWERS.keys())
def test_when_the_service_answers_then_retryable_or_refused_with_its_retry_time(
    status: int, headers: dict[str, str], body: bytes, error: type[Exception] | None, retry_s: float | None
) -> None:
    if error is None:
        check_answer(status, headers, body, NOW_S)
        return
    with pytest.raises(error) as caught:
        check_answer(status, headers, body, NOW_S)
    assert str(caught.value).startswith(f"http {status}:")
    if isinstance(caught.value, RetryableError):
        assert caught.value.retry_after_s == retry_s
    if status == 400:
        assert "Invalid declination" in str(caught.value)


QUOTA = {
    "calls left": ({}, {"remaining": 11, "period": 3600}, None),
    "last call used (body)": ({}, {"remaining": 0, "period": 3600}, 3600.0),
    "last call used (header, with reset)": ({"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "1234"}, {}, 1234.0),
    "header says calls are left": ({"X-Ratelimit-Remaining": "5"}, {"remaining": 0}, None),
    "no rate limit information": ({}, {}, None),
}


@pytest.mark.parametrize("headers, ratelimit, wait_s", QUOTA.values(), ids=QUOTA.keys())
def test_when_a_good_answer_used_the_last_call_then_wait_for_the_quota(
    headers: dict[str, str], ratelimit: dict[str, int], wait_s: float | None
) -> None:
    body = json.dumps({"result": {}, "message": {"code": 0, "ratelimit": ratelimit}}).encode()
    assert quota_wait_s(headers, body) == wait_s
