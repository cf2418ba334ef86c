"""Is the GX's Modbus data alive? Its clock register says so (pure; times passed in).

The GX's Modbus server answers from a cache of D-Bus values, so a hung D-Bus keeps serving the same
numbers, indistinguishable from real ones. Register 830 (/Timestamp, the GX's UTC seconds) is the one value
that must change every second. Once it has been seen ticking, Modbus values are only "confirmed" as of the
last time that clock advanced: when it stops, their age grows and the grid drops them after their TTL,
exactly like MQTT values without heartbeats. A GX whose register never ticks is never trusted this way
and nothing changes (the values keep their read time).
"""

from __future__ import annotations

from dataclasses import dataclass

LEARN_TICKS = 3  # advances of about one second before the clock is trusted as a liveness signal
MAX_STEP_S = 2  # a step larger than this is a clock jump, not a tick
FROZEN_AFTER_S = 3.0  # no advance for this long: report the GX as frozen (state and one log line)


@dataclass(slots=True)
class GxClock:
    """Tracks register 830 across polls."""

    last_ts: int | None = None
    advanced_mono_s: float = 0.0
    ticks: int = 0

    @property
    def trusted(self) -> bool:
        """Whether the clock has been seen ticking (only then does it gate ages)."""
        return self.ticks >= LEARN_TICKS

    def update(self, gx_ts: int | None, mono_s: float) -> float:
        """Record this poll's clock reading; return the time the poll's values count as confirmed."""
        if gx_ts is None:
            return mono_s
        if self.last_ts is None or gx_ts != self.last_ts:
            if self.last_ts is not None and 0 < gx_ts - self.last_ts <= MAX_STEP_S:
                self.ticks += 1
            self.last_ts = gx_ts
            self.advanced_mono_s = mono_s
        return self.advanced_mono_s if self.trusted else mono_s

    def frozen(self, mono_s: float) -> bool:
        """Trusted, yet no advance for FROZEN_AFTER_S."""
        return self.trusted and mono_s - self.advanced_mono_s > FROZEN_AFTER_S
