"""Progress of long work (backtest cut-offs, fine-tune steps): `what i/n  ETA` as one refreshed line on a
TTY, and a log line every tenth of the work or every 30 s (never silent for long, never a log flood)."""

from __future__ import annotations

import sys
import time
from typing import Any

LOG_EVERY_S = 30.0


class Progress:
    """Counts done of total for `what`; `event` is the log event, `keys` its (done, total) field names."""

    def __init__(
        self, what: str, total: int, log: Any, *, event: str, keys: tuple[str, str], tty: bool | None = None
    ) -> None:
        self.what = what
        self.keys = keys
        self.total = total
        self.log = log
        self.event = event
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.start = time.monotonic()
        self.last_log = self.start
        self.tenth = 0

    def eta_s(self, done: int) -> float:
        """Seconds left at the pace so far (NaN before the first unit)."""
        elapsed = time.monotonic() - self.start
        return elapsed / done * (self.total - done) if done else float("nan")

    def step(self, done: int, total: int | None = None, **fields: Any) -> None:
        """Report `done` of `total` finished, with extra fields for the line and the log."""
        self.total = total if total is not None else self.total
        now = time.monotonic()
        eta = self.eta_s(done)
        if self.tty:
            extra = "".join(f"  {k} {v}" for k, v in fields.items())
            end = "\n" if done == self.total else ""
            line = f"\r{self.what} {done}/{self.total}{extra}  ETA {eta:5.0f} s"
            print(line, end=end, file=sys.stderr, flush=True)
        tenth = 10 * done // max(1, self.total)
        if now - self.last_log >= LOG_EVERY_S or tenth > self.tenth or done == self.total:
            self.last_log, self.tenth = now, tenth
            counts = {self.keys[0]: done, self.keys[1]: self.total}
            self.log.info(self.event, **counts, eta_s=round(eta) if done else None, **fields)

    def end_line(self) -> None:
        """End the TTY line (when the work ended before done == total)."""
        if self.tty:
            print(file=sys.stderr)
