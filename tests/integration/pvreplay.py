"""A local HTTP server replaying Forecast.Solar answers for the PV forecast tests (no tests here).

It answers every GET with the next scripted step (a status with a body, or a hang), then with the recorded-format
fixture tests/fixtures/forecast_solar_estimate.json (written from Forecast.Solar's documentation; see
tests/unit/test_pv_forecast_solar.py). Every request is logged with its wall and monotonic time. Nothing here
reaches the network: it listens on 127.0.0.1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ESTIMATE = FIXTURES / "forecast_solar_estimate.json"


@dataclass(frozen=True)
class Step:
    """One scripted answer: `status` with `body` (bytes, or built at request time from the wall clock), or a hang
    of `hang_s` seconds without a byte."""

    status: int = 200
    body: bytes | Callable[[float], bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0


@dataclass(frozen=True)
class Request:
    path: str
    wall_s: float
    mono_s: float
    answered: str  # "200", "429", "hang", ...


class ReplayServer:
    """Start with start(); `url` is its base URL; `requests` what it saw."""

    def __init__(self, script: list[Step], final: Step | None = None) -> None:
        self._script = list(script)
        self._final = final or Step(200, ESTIMATE.read_bytes(), {"Content-Type": "application/json; charset=utf-8"})
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._answer(self)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="pv-replay", daemon=True)

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # free any hanging handler
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            step = self._script.pop(0) if self._script else self._final
            answered = "hang" if step.hang_s else str(step.status)
            self.requests.append(Request(handler.path, time.time(), time.monotonic(), answered))
        if step.hang_s:
            self._release.wait(step.hang_s)
            return  # the connection closes without an answer
        body = step.body(time.time()) if callable(step.body) else step.body
        handler.send_response(step.status)
        for name, value in {"Content-Type": "application/json; charset=utf-8", **step.headers}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
