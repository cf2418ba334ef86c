"""structlog set-up: JSON lines off a TTY (journald), a console renderer on a TTY.

Standard-library loggers (pymodbus, paho, apscheduler, transformers) are routed through the same
processors. `RepeatCounter` turns a flood of identical problems into one line plus periodic counts.

Tracebacks never carry frame locals (structlog's default does): a local such as the request headers of
the InfluxDB client would put the token in the journal.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

import structlog
from structlog.dev import RichTracebackFormatter
from structlog.tracebacks import ExceptionDictTransformer

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class StdoutHandler(logging.StreamHandler):
    """A StreamHandler bound to whatever `sys.stdout` is when a record is emitted, not when it was set up:
    a daemon never swaps stdout, but an in-process caller (a test harness, a notebook) may close the one
    that was current at set-up, and a handler holding it would then lose every later line."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stdout


def setup_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog and stdlib logging once, at start-up."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if use_json:
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)))
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stdout.isatty(), exception_formatter=RichTracebackFormatter(show_locals=False)
        )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = StdoutHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.INFO))
    # Chatty libraries: their own warnings still pass, their per-request debug noise does not.
    for name in ("urllib3", "apscheduler.executors.default", "transformers", "httpx"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # pymodbus logs every request timeout at ERROR; our sources count and log those once per state change.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def get_logger(name: str) -> Any:
    """A structlog logger bound to a component name."""
    return structlog.get_logger(name)


class RepeatCounter:
    """Log the first occurrence of each kind of problem, then only a count every `period_s`.

    Thread-safe: a source's loop hits it while the health probe reads `count()` from another thread."""

    def __init__(self, logger: Any, period_s: float = 300.0) -> None:
        self._log = logger
        self._period_s = period_s
        self._lock = threading.Lock()
        self._state: dict[str, tuple[int, float, int]] = {}  # kind -> (count, last_report_mono, reported)

    def count(self) -> dict[str, int]:
        """Occurrences per kind since start."""
        with self._lock:
            return {kind: state[0] for kind, state in self._state.items()}

    def hit(self, kind: str, event: str, **kw: Any) -> None:
        """Record one occurrence of `kind`; logs at most once per period per kind (outside the lock)."""
        now = time.monotonic()
        with self._lock:
            count, last, reported = self._state.get(kind, (0, 0.0, 0))
            count += 1
            report = count == 1 or now - last >= self._period_s
            self._state[kind] = (count, now, count) if report else (count, last, reported)
        if count == 1:
            self._log.warning(event, kind=kind, **kw)
        elif report:
            self._log.warning(event, kind=kind, repeats=count - reported, total=count, **kw)
