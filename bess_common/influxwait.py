"""Wait for InfluxDB at start-up: the one retry loop for "is InfluxDB there yet" (after a power cut it
often starts after the services that need it).

Ping, then CREATE DATABASE when asked, retried with exponential backoff and jitter (bess_common.backoff)
on RetryableError (down, 5xx, timeouts). Logged as state changes: `influx_waiting` once, `influx_still_waiting`
at most every `report_every_s`, `influx_up` with the time waited. An AuthError (FatalError) is raised at once:
waiting cannot fix credentials.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from bess_common.backoff import Backoff
from bess_common.errors import RejectedError, RetryableError
from bess_common.influx import AuthError, InfluxClient
from bess_common.logs import get_logger

log = get_logger("influx.wait")


def _probe(client: InfluxClient, create_database: bool) -> str:
    version = client.ping()
    if create_database:
        try:
            client.create_database()
        except AuthError as exc:  # a token without admin rights: the database may well exist
            log.warning("influx_cannot_create_database", error=str(exc), action="assuming it exists")
        except RejectedError:
            pass  # 2.x/3.x: the bucket must exist
    return version


def wait_for_influx(
    client: InfluxClient,
    *,
    create_database: bool,
    timeout_s: float | None,
    stop: threading.Event | None = None,
    backoff: Backoff | None = None,
    report_every_s: float = 60.0,
    on_wait: Callable[[float], object] | None = None,
) -> bool:
    """Block until InfluxDB answers (True), `timeout_s` passes (RetryableError with the last reason) or
    `stop` is set (False). `timeout_s` None waits for ever. `on_wait(delay_s)` runs before each sleep (the
    service extends its systemd start timeout there)."""
    backoff = backoff or Backoff(initial_s=1.0, max_s=30.0)
    stop = stop or threading.Event()
    started = time.monotonic()
    last_report = 0.0
    while True:
        try:
            version = _probe(client, create_database)
        except RetryableError as exc:
            waited = time.monotonic() - started
            if timeout_s is not None and waited >= timeout_s:
                raise RetryableError(f"InfluxDB not reachable after waiting {waited:.0f} s: {exc}") from None
            if backoff.attempts == 0:
                log.warning("influx_waiting", url=client.base_url, error=str(exc), action="retrying with backoff")
                last_report = time.monotonic()
            elif time.monotonic() - last_report >= report_every_s:
                log.warning("influx_still_waiting", url=client.base_url, waited_s=round(waited), error=str(exc))
                last_report = time.monotonic()
            delay = backoff.next_delay()
            if timeout_s is not None:
                delay = min(delay, max(0.0, timeout_s - waited))
            if on_wait is not None:
                with contextlib.suppress(Exception):
                    on_wait(delay)
            if stop.wait(delay):
                return False
            continue
        if backoff.attempts:
            log.info("influx_up", url=client.base_url, version=version, waited_s=round(time.monotonic() - started, 1))
        return True
