"""The simulator's PV forecast over HTTP, in Forecast.Solar's `estimate` format (so the collector's real provider
can run against it end to end).

GET /estimate/:lat/:lon/:dec/:az/:kwp (or /:apikey/estimate/...) answers the forecast the simulator issues at
that moment (collector.simulator.pvforecast): the plane parameters are checked for range like the real
service and otherwise ignored (the simulated site has one PV array). The document follows the service's
documentation (docs/pv-forecast.md): per UTC day a sunrise point (0 Wh), a point on each full hour carrying
the energy of the hour before it, and a sunset point carrying the energy since the last full hour;
`watts`, `watt_hours_period`, `watt_hours` (per local day), `watt_hours_day`; timestamps per `?time=`
(utc, iso8601, seconds, or by default naive local time of `zone`, named in `message.info.timezone`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import numpy as np

from collector.pvforecast.issue import PvForecastIssue
from collector.simulator.profiles import DAY_S, clear_sky_w
from collector.simulator.pvforecast import SimPvForecast

NS = 1_000_000_000
_NUM = r"(-?\d+(?:\.\d+)?)"
ESTIMATE_PATH = re.compile(rf"^/(?:[A-Za-z0-9]{{16}}/)?estimate/{_NUM}/{_NUM}/{_NUM}/{_NUM}/{_NUM}/?$")


def _sun_s(day: int) -> tuple[int, int]:
    """UTC seconds of the simulated sunrise and sunset of a day (first and after-last second of clear sky)."""
    lit = np.flatnonzero(clear_sky_w(day) > 1e-6)  # sin(pi) is not quite 0 after sunset
    return day * DAY_S + int(lit[0]), day * DAY_S + int(lit[-1]) + 1


def energy_points(issue: PvForecastIssue) -> list[tuple[int, int]]:
    """(UTC second, Wh of the period ending there) in Forecast.Solar's layout, for an hourly issue."""
    power = {p.target_ns // NS: p.power_w for p in issue.periods}
    first, last = min(power), max(power) + 3600
    points: dict[int, int] = {}
    for day in range(first // DAY_S, (last - 1) // DAY_S + 1):
        rise, sunset = _sun_s(day)
        if first <= rise < last:
            points[rise] = 0
        for t in range(-(-(rise + 1) // 3600) * 3600, sunset + 1, 3600):  # full hours after sunrise
            if t - 3600 in power:
                points[t] = round(power[t - 3600])
        if sunset % 3600 and sunset // 3600 * 3600 in power:
            points[sunset] = round(power[sunset // 3600 * 3600])
    return sorted(points.items())


def _stamp(t: int, time_format: str, zone: dt.tzinfo) -> str:
    if time_format == "seconds":
        return str(t)
    if time_format == "utc":
        return dt.datetime.fromtimestamp(t, dt.UTC).isoformat()
    local = dt.datetime.fromtimestamp(t, zone)
    return local.isoformat() if time_format == "iso8601" else local.strftime("%Y-%m-%d %H:%M:%S")


def render_estimate(
    issue: PvForecastIssue, time_format: str = "", zone: str = "UTC", place: tuple[float, float] = (0.0, 0.0)
) -> bytes:
    """The issue as a Forecast.Solar estimate answer (JSON bytes)."""
    tz = ZoneInfo(zone)
    points = energy_points(issue)
    watts: dict[str, int] = {}
    period: dict[str, int] = {}
    total: dict[str, int] = {}
    per_day: dict[str, int] = {}
    for n, (t, wh) in enumerate(points):
        key = _stamp(t, time_format, tz)
        nxt = points[n + 1][1] if n + 1 < len(points) and points[n + 1][0] - t <= 3600 else 0
        watts[key] = 0 if wh == 0 or nxt == 0 else round((wh + nxt) / 2)
        period[key] = wh
        date = dt.datetime.fromtimestamp(t, tz).date().isoformat()
        per_day[date] = per_day.get(date, 0) + wh
        total[key] = per_day[date]
    issued = issue.issued_ns // NS
    doc = {
        "result": {"watts": watts, "watt_hours_period": period, "watt_hours": total, "watt_hours_day": per_day},
        "message": {
            "code": 0,
            "type": "success",
            "text": "",
            "info": {
                "latitude": place[0],
                "longitude": place[1],
                "distance": 0,
                "place": "bess-edge simulator",
                "timezone": zone,
                "time": dt.datetime.fromtimestamp(issued, tz).isoformat(),
                "time_utc": dt.datetime.fromtimestamp(issued, dt.UTC).isoformat(),
            },
            "ratelimit": {"zone": "IP", "period": 3600, "limit": 12, "remaining": 11},
        },
    }
    return json.dumps(doc).encode()


def _error(code: int, text: str) -> bytes:
    return json.dumps({"result": None, "message": {"code": code, "type": "error", "text": text}}).encode()


class PvForecastServer:
    """The HTTP server on a daemon thread; port 0 picks a free one (`port` after start)."""

    def __init__(
        self,
        forecaster: SimPvForecast,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        zone: str = "UTC",
        clock: Callable[[], float] = time.time,
    ) -> None:
        ZoneInfo(zone)  # an unknown zone fails here, not on the first request
        self.forecaster = forecaster
        self.zone = zone
        self.clock = clock
        self.served: list[PvForecastIssue] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = server.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="sim-pv-forecast", daemon=True)

    def start(self) -> PvForecastServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def answer(self, target: str) -> tuple[int, bytes]:
        """(status, body) for a request target (path and query)."""
        parts = urlsplit(target)
        found = ESTIMATE_PATH.match(parts.path)
        if not found:
            return 404, _error(404, "Page not found")
        lat, lon, dec, az, kwp = (float(g) for g in found.groups())
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 <= dec <= 90 and -180 <= az <= 180 and kwp > 0):
            return 422, _error(422, "Invalid location or plane parameters")
        time_format = parse_qs(parts.query).get("time", [""])[0]
        issue = self.forecaster.issue(int(self.clock() * NS))
        self.served.append(issue)
        return 200, render_estimate(issue, time_format, self.zone, (lat, lon))
