"""The simulator's Forecast.Solar-format answer: read back by the collector's parser in every documented time
format, it gives the simulator's own forecast; wrong paths and planes are refused like the real service."""

from __future__ import annotations

import json

import pytest

from collector.pvforecast.forecast_solar import parse_estimate
from collector.simulator.physics import BessPhysics
from collector.simulator.profiles import DAY_S
from collector.simulator.pvforecast import SimPvForecast
from collector.simulator.pvserver import PvForecastServer, render_estimate

NS = 10**9
ISSUED_NS = (20_400 * DAY_S + 9 * 3600 + 17 * 60) * NS  # 2025-11-08T09:17Z, after sunrise


@pytest.mark.parametrize("time_format", ["utc", "iso8601", "seconds", ""])
def test_when_read_back_in_any_time_format_then_it_is_the_simulators_forecast(time_format: str) -> None:
    issue = SimPvForecast(BessPhysics(5)).issue(ISSUED_NS)
    parsed = parse_estimate(render_estimate(issue, time_format, "Europe/Berlin"), ISSUED_NS)
    expected = {p.target_ns: float(round(p.power_w)) for p in issue.periods}
    got = {p.target_ns: p.power_w for p in parsed.periods}
    assert got == {t: expected[t] for t in got}  # every hour it sent is the simulator's hour (Wh, rounded)
    daylight = {t for t, w in expected.items() if w > 0}
    assert daylight <= set(got)  # and no daylight hour is missing
    assert min(got) == issue.periods[0].target_ns  # the issue's own hour comes first


def test_when_rendered_then_the_documented_layout_with_local_dates() -> None:
    issue = SimPvForecast(BessPhysics(5)).issue(ISSUED_NS)
    doc = json.loads(render_estimate(issue, "iso8601", "Europe/Berlin"))
    assert set(doc["result"]) == {"watts", "watt_hours_period", "watt_hours", "watt_hours_day"}
    assert doc["message"]["code"] == 0 and doc["message"]["info"]["timezone"] == "Europe/Berlin"
    stamps = list(doc["result"]["watt_hours_period"])
    assert all(s.endswith("+01:00") for s in stamps)
    sunrise = [s for s in stamps if not s.endswith(":00:00+01:00")]
    assert len(sunrise) == 4  # two sunrises (the issue starts after the first day's) and two sunsets in 48 h
    days = doc["result"]["watt_hours_day"]
    assert sum(days.values()) == sum(doc["result"]["watt_hours_period"].values())


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/estimate/51.3/9.4/30/0/4.2?time=utc", 200),
        ("/abcdEFGH12345678/estimate/51.3/9.4/30/-90/4.2", 200),
        ("/estimate/95/9.4/30/0/4.2", 422),
        ("/estimate/51.3/9.4/30/270/4.2", 422),
        ("/estimate/51.3/9.4/30/0", 404),
        ("/history/51.3/9.4/30/0/4.2", 404),
    ],
)
def test_when_asked_then_the_service_answers_or_refuses(path: str, status: int) -> None:
    server = PvForecastServer(SimPvForecast(BessPhysics(5)), clock=lambda: ISSUED_NS / NS)
    try:
        got, body = server.answer(path)
    finally:
        server.stop()
    assert got == status
    assert json.loads(body)["message"]["code"] == (0 if status == 200 else status)
