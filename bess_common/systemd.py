"""sd_notify and the service watchdog, dependency-free; every call is a no-op off systemd.

systemd tells a `Type=notify` service where to report through `$NOTIFY_SOCKET` (a filesystem path, or an
abstract socket written with a leading '@'), and the watchdog period through `$WATCHDOG_USEC`
(meant for the process in `$WATCHDOG_PID` when that is set). Nothing here keeps module state: the
environment is read on each call, so a test (or a child process) sees exactly what it was given.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from types import TracebackType

__all__ = [
    "Watchdog",
    "extend_timeout",
    "notify",
    "ready",
    "status",
    "stopping",
    "watchdog_interval_s",
    "watchdog_ping",
]

_log = logging.getLogger(__name__)


def _address(raw: str) -> str:
    # An abstract socket is announced as "@name" and addressed as "\0name".
    return "\0" + raw[1:] if raw.startswith("@") else raw


def notify(state: str) -> bool:
    """Send one sd_notify datagram (e.g. "READY=1"); False when not under systemd or the send failed."""
    raw = os.environ.get("NOTIFY_SOCKET", "")
    if not raw or raw[0] not in "/@":
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # Never block the caller (the watchdog thread, shutdown) if nobody drains the socket.
            sock.setblocking(False)
            sock.sendto(state.encode("utf-8"), _address(raw))
    except OSError as exc:
        _log.warning("sd_notify failed: %s (socket %s)", exc, raw)
        return False
    return True


def ready(text: str = "") -> bool:
    """Start-up is complete: `READY=1` (with an optional STATUS line)."""
    return notify("READY=1" + (f"\nSTATUS={text}" if text else ""))


def stopping(text: str = "") -> bool:
    """Orderly shutdown has begun: `STOPPING=1`."""
    return notify("STOPPING=1" + (f"\nSTATUS={text}" if text else ""))


def status(text: str) -> bool:
    """One free-form line shown by `systemctl status`."""
    return notify(f"STATUS={text}")


def extend_timeout(seconds: float) -> bool:
    """Ask for more time to start or stop (`EXTEND_TIMEOUT_USEC`), e.g. while a model loads."""
    return notify(f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * 1_000_000))}")


def watchdog_ping() -> bool:
    """Tell systemd this service is alive: `WATCHDOG=1`."""
    return notify("WATCHDOG=1")


def watchdog_interval_s() -> float | None:
    """The `WatchdogSec=` period for this process, or None when the watchdog is off or meant for another pid."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 if value > 0 else None


class Watchdog:
    """Ping the systemd watchdog at half its period, but only while `check()` says the service is healthy.

    `check` must answer from state the main loop refreshes (e.g. "a grid tick within the last 10 s and
    the writer is not stuck"): when the loop stalls, `check()` turns false, the pings stop and systemd
    restarts the service. `interval_s` is the watchdog period; None reads it from the environment, and
    without one the watchdog is disabled (start() does nothing).
    """

    def __init__(self, check: Callable[[], bool], interval_s: float | None = None) -> None:
        self._check = check
        self.interval_s = interval_s if interval_s is not None else watchdog_interval_s()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._healthy = True

    @property
    def enabled(self) -> bool:
        """True when there is a watchdog period to keep."""
        return self.interval_s is not None and self.interval_s > 0

    def beat(self) -> bool:
        """One cycle: ping if `check()` is true (an exception counts as unhealthy); return whether it pinged."""
        try:
            healthy = bool(self._check())
        except Exception:
            _log.exception("watchdog health check raised; treating the service as unhealthy")
            healthy = False
        if healthy != self._healthy:
            if healthy:
                _log.warning("service healthy again; watchdog pings resumed")
            else:
                _log.error("service unhealthy; watchdog pings stopped, systemd will restart it if this lasts")
            self._healthy = healthy
        return healthy and watchdog_ping()

    def start(self) -> None:
        """Ping from a daemon thread until stop(); a no-op when disabled or already running."""
        if not self.enabled or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="systemd-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop pinging and wait for the thread to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        assert self.interval_s is not None
        period_s = self.interval_s / 2
        while True:
            self.beat()
            if self._stop.wait(period_s):
                return

    def __enter__(self) -> Watchdog:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
