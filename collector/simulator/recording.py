"""What the simulated GX received: every Modbus request and every MQTT message (thread-safe log)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

WRITE_FUNCTION_CODES = frozenset({5, 6, 15, 16, 22, 23})


@dataclass(frozen=True, slots=True)
class ModbusRequest:
    """One Modbus request as received, with the exception code answered (None = served)."""

    unit: int
    function_code: int
    address: int | None
    count: int | None
    exception: int | None
    mono_s: float = field(default_factory=time.monotonic)

    @property
    def is_write(self) -> bool:
        """Whether the function code writes (FC5/6/15/16/22/23)."""
        return self.function_code in WRITE_FUNCTION_CODES


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """One MQTT message the GX's broker side saw on R/ or W/ (or any subscribed topic)."""

    topic: str
    payload: bytes
    mono_s: float = field(default_factory=time.monotonic)

    @property
    def is_write(self) -> bool:
        """Whether it is a W/ write request."""
        return self.topic.startswith("W/")


Received = ModbusRequest | MqttMessage


class Recorder:
    """Append-only, thread-safe list of received requests and messages."""

    def __init__(self) -> None:
        self._items: list[Received] = []
        self._lock = threading.Lock()

    def add(self, item: Received) -> None:
        """Record one item."""
        with self._lock:
            self._items.append(item)

    def snapshot(self) -> list[Received]:
        """A copy of everything recorded so far, in arrival order."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        """Forget everything recorded so far."""
        with self._lock:
            self._items.clear()
