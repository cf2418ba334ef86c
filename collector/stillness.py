"""Which devices have stopped changing: the one hang of a GX service that can honestly be seen (pure + a lock).

When a D-Bus service on the GX hangs (a driver stuck, a BMS link frozen inside its driver), the GX's own
liveness signals keep going: the MQTT heartbeat is a timer of the dbus-flashmq plugin and Modbus register 830
is the Modbus server's clock at request time. The hung service's values simply stop changing, and MQTT (which
publishes changes only) and Modbus (which serves the cached value) both keep delivering them as current.
Nothing on the wire tells that apart from a device at rest. What can be seen is that none of a device's
fast-moving values (collector/gx/moving.csv: voltages, currents, powers, cell voltages) has changed at all for
`after_s`: the device is then reported *suspect* in the health data, with how long it has been unchanged.
Its values keep landing (they may be true), but never silently: the suspicion is in collector_health, on
/metrics and in the log.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from collector.gx import tables
from collector.gx.tables import MovingPath
from collector.observation import DeviceGone, Event, Observation, Role

_Key = tuple[str, str, str]  # (role, path, source)


class Stillness:
    """Tracks, per role, when one of its fast-moving values last changed; thread-safe."""

    def __init__(self, after_s: float, moving: Sequence[MovingPath] | None = None) -> None:
        self.after_s = after_s
        self._moving = tuple(tables.moving() if moving is None else moving)
        self._lock = threading.Lock()
        self._last: dict[_Key, object] = {}
        self._changed_mono_s: dict[str, float] = {}  # role -> last change (or first sight)
        self._is_moving: dict[tuple[str, str], bool] = {}

    def _moves(self, role: str, path: str) -> bool:
        key = (role, path)
        found = self._is_moving.get(key)
        if found is None:
            found = self._is_moving[key] = any(m.role == role and m.match(path) for m in self._moving)
        return found

    def observe(self, events: Iterable[Event]) -> None:
        """Take a batch of source events (the agent's sink calls this beside the grid)."""
        with self._lock:
            for event in events:
                if isinstance(event, Observation) and self._moves(event.role, event.path):
                    key = (event.role, event.path, event.source)
                    seen = key in self._last
                    previous = self._last.get(key)
                    self._last[key] = event.value
                    if not seen:
                        self._changed_mono_s.setdefault(event.role, event.mono_s)
                    elif previous != event.value:
                        self._changed_mono_s[event.role] = max(self._changed_mono_s[event.role], event.mono_s)
                elif isinstance(event, DeviceGone):
                    self._forget(event.role)

    def _forget(self, role: Role) -> None:
        """A device that is gone is not suspect: it is absent (reported as such); start afresh on return."""
        self._changed_mono_s.pop(role, None)
        for key in [k for k in self._last if k[0] == role]:
            del self._last[key]

    def unchanged_s(self, now_mono_s: float) -> dict[str, float]:
        """Seconds since each seen role's fast-moving values last changed."""
        with self._lock:
            return {role: max(0.0, now_mono_s - t) for role, t in sorted(self._changed_mono_s.items())}

    def suspects(self, now_mono_s: float) -> list[str]:
        """The roles unchanged for at least `after_s` (none when after_s is 0: detection off)."""
        if self.after_s <= 0:
            return []
        return [role for role, s in self.unchanged_s(now_mono_s).items() if s >= self.after_s]
