"""The PV forecast provider: a collector source on its own thread that fetches the site's forecast on a schedule
and hands every issue to the agent as `Rows` (buffered and written like every other row).

Schedule: the first fetch after a random 0..jitter_s (Forecast.Solar asks for calls spread away from the full
hour), then every interval_s (+ jitter). Failures, classified at the edge:
- retryable (network, timeout, HTTP 5xx, 429): retried with bess_common.backoff.Backoff (exponential, jitter),
  never sooner than the server's own retry time (Retry-After, or the 429 answer's `ratelimit.retry-at`);
- rejected (a 200 whose body is not the documented form): counted, logged once per kind, the body kept in
  <buffer_dir>/pv_forecast_rejected.json for a look; the next try is the next scheduled fetch;
- refused (HTTP 4xx other than 429: the service rejects the plane or the key): counted and logged as an error
  with the service's text; tried again at the next scheduled fetch.
Nothing here can stall sampling: the HTTP call has a total timeout and runs on this thread only; while a
request is in flight the watchdog's loop age stays fresh (an optional forecast must never get the collector
restarted), and the request's own age is a metric.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import urllib3

from bess_common.backoff import Backoff
from bess_common.errors import FatalError, RejectedError, RetryableError
from bess_common.logs import RepeatCounter, get_logger
from collector.config import PvForecastSettings
from collector.observation import ObservationSink, Rows, SourceState
from collector.pvforecast.forecast_solar import check_answer, estimate_url, parse_estimate, quota_wait_s
from collector.pvforecast.issue import issue_samples
from collector.sources.threaded import ThreadedSource

BEAT_S = 2.0  # the loop's heartbeat while it waits
USER_AGENT = "bess-edge (pv forecast)"


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What came back for one GET."""

    status: int
    headers: Mapping[str, str]
    body: bytes


HttpGet = Callable[[str], HttpAnswer]


def urllib3_get(timeout_s: float) -> HttpGet:
    """A GET with a total timeout and no retries of its own; network trouble -> RetryableError."""
    pool = urllib3.PoolManager(
        timeout=urllib3.Timeout(total=timeout_s),
        retries=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
    )

    def get(url: str) -> HttpAnswer:
        try:
            resp = pool.request("GET", url)
        except urllib3.exceptions.TimeoutError as exc:
            raise RetryableError(f"timeout: {exc}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise RetryableError(f"network: {type(exc).__name__}: {exc}") from None
        return HttpAnswer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.data)

    return get


class PvForecastSource(ThreadedSource):
    """Fetches Forecast.Solar-style estimates for one site; see the module docstring."""

    name = "pv_forecast"
    thread_name = "pv-forecast"

    def __init__(
        self,
        settings: PvForecastSettings,
        site: str,
        set_aside_dir: Path,
        *,
        http: HttpGet | None = None,
        rng: random.Random | None = None,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        super().__init__({"issues_stored": 0, "periods_stored": 0, "fetch_attempts": 0})
        assert settings.latitude is not None and settings.longitude is not None and settings.kwp is not None
        self.settings = settings
        self.site = site
        self.url = estimate_url(
            settings.url,
            latitude=settings.latitude,
            longitude=settings.longitude,
            tilt_deg=settings.tilt_deg,
            azimuth_deg=settings.azimuth_deg,
            kwp=settings.kwp,
        )
        self._set_aside = set_aside_dir / "pv_forecast_rejected.json"
        self._http = http or urllib3_get(settings.timeout_s)
        self._rng = rng or random.Random()
        self._wall_ns = wall_ns
        self._backoff = Backoff(settings.retry_initial_s, settings.retry_max_s, self._rng)
        self._log = get_logger("pv_forecast")
        self._errors = RepeatCounter(self._log)
        self._repeat_counters["error"] = self._errors
        self._state: SourceState = "starting"
        self._in_flight_since: float | None = None
        self._state_lock = threading.Lock()

    # --- Source protocol -----------------------------------------------------------------------------
    def state(self) -> dict[str, SourceState]:
        """One pseudo-device, the forecast service."""
        with self._state_lock:
            return {"forecast_service": self._state}

    def loop_age_s(self) -> float:
        """The scheduler's age; a request in flight (bounded by timeout_s) counts as alive."""
        if self._in_flight_since is not None:
            return 0.0
        return super().loop_age_s()

    def counters(self) -> dict[str, int]:
        """Counts plus the age of a request in flight (0 when none)."""
        out = super().counters()
        since = self._in_flight_since
        out["request_in_flight_s"] = 0 if since is None else int(time.monotonic() - since)
        return out

    # --- the loop --------------------------------------------------------------------------------------
    def _run(self, sink: ObservationSink) -> None:
        self._log.info("pv_forecast_started", url=self.url, interval_s=self.settings.interval_s)
        delay = self._rng.uniform(0.0, self.settings.jitter_s)
        while not self._wait(delay):
            try:
                delay = self._attempt(sink)
            except Exception as exc:  # a bug or a failing sink: counted, logged once per kind; the thread lives
                self._in_flight_since = None
                self._errors.hit(f"internal_{type(exc).__name__}", "pv_forecast_internal_error", error=repr(exc))
                delay = self._next_scheduled_s()

    def _wait(self, seconds: float) -> bool:
        """Wait, beating; True when asked to stop."""
        end = time.monotonic() + seconds
        while True:
            self._beat()
            left = end - time.monotonic()
            if left <= 0:
                return False
            if self._stop.wait(min(left, BEAT_S)):
                return True

    def _next_scheduled_s(self) -> float:
        return self.settings.interval_s + self._rng.uniform(0.0, self.settings.jitter_s)

    def _attempt(self, sink: ObservationSink) -> float:
        """One fetch; returns the delay before the next."""
        self._bump("fetch_attempts")
        self._in_flight_since = time.monotonic()
        try:
            answer = self._http(self.url)
            received_ns = self._wall_ns()
            check_answer(answer.status, answer.headers, answer.body, received_ns // 1_000_000_000)
            issue = parse_estimate(answer.body, received_ns)
        except RetryableError as exc:
            return self._retry(exc)
        except RejectedError as exc:
            self._set_state("stalled")
            self._errors.hit("rejected", "pv_forecast_rejected", error=str(exc), set_aside=str(self._set_aside))
            self._keep(answer.body)
            return self._next_scheduled_s()
        except FatalError as exc:
            self._set_state("stalled")
            self._errors.hit("refused", "pv_forecast_refused", error=str(exc), url=self.url)
            return self._next_scheduled_s()
        finally:
            self._in_flight_since = None
        sink([Rows(self.name, tuple(issue_samples(issue, self.site)))])
        self._bump("issues_stored")
        self._bump("periods_stored", len(issue.periods))
        self._backoff.reset()
        if self._set_state("connected"):
            self._log.info("pv_forecast_ok", periods=len(issue.periods), issued_ns=issue.issued_ns)
        quota_s = quota_wait_s(answer.headers, answer.body)
        if quota_s is not None and quota_s > self.settings.interval_s:  # another tool on this IP used the quota
            self._errors.hit("quota_used_up", "pv_forecast_quota_used_up", next_call_in_s=round(quota_s))
            return quota_s + self._rng.uniform(0.0, self.settings.jitter_s)
        return self._next_scheduled_s()

    def _retry(self, exc: RetryableError) -> float:
        self._set_state("disconnected")
        kind = str(exc).split(":", 1)[0].replace(" ", "_")
        delay = max(self._backoff.next_delay(), exc.retry_after_s or 0.0)
        self._errors.hit(kind, "pv_forecast_retrying", error=str(exc), retry_in_s=round(delay, 1))
        return delay

    def _set_state(self, state: SourceState) -> bool:
        """Set the state; True when it changed."""
        with self._state_lock:
            changed = state != self._state
            self._state = state
        return changed

    def _keep(self, body: bytes) -> None:
        try:
            self._set_aside.parent.mkdir(parents=True, exist_ok=True)
            self._set_aside.write_bytes(body[:1_000_000])
        except OSError as exc:
            self._log.warning("pv_forecast_set_aside_failed", error=str(exc))
