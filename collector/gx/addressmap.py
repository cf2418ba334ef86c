"""How dbus_modbustcp walks its register map for one read (pure): which registers a read covers, or None.

As `Mappings::DataIterator` (victronenergy/dbus_modbustcp, mappings.cpp, the same at v1.0.42, v1.0.77,
v1.0.94 and v1.0.101): the map is keyed by start address; a read may start inside a register (the one with
the greatest start below the address, if it reaches that far); every next register must start exactly
where the previous one ended, so a read can neither cross an unmapped address nor run from a register into
one that overlaps it (older releases list such overlaps). Any of these is exception 2 on the GX. Shared by
the simulator's server and the collector's guess of a GX's release.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from collector.gx.tables import Register

Part = tuple[Register, int, int]  # a register, the offset of the first word read in it, the words read


@dataclass(frozen=True, slots=True)
class AddressMap:
    """Registers keyed by start address (overlaps allowed, as in older releases' lists)."""

    entries: dict[int, Register]
    starts: tuple[int, ...]  # the keys of entries, sorted

    @classmethod
    def of(cls, registers: Iterable[Register]) -> AddressMap:
        """The map of these registers (a later one at the same start address wins)."""
        entries = {reg.address: reg for reg in registers}
        return cls(entries, tuple(sorted(entries)))

    def start(self, address: int) -> int | None:
        """The index (in `starts`) of the register a read from `address` begins in, or None (unmapped)."""
        i = bisect.bisect_left(self.starts, address)
        if i < len(self.starts) and self.starts[i] == address:
            return i
        if i == 0 or self.starts[i - 1] + self.entries[self.starts[i - 1]].words <= address:
            return None
        return i - 1

    def walk(self, address: int, count: int) -> list[Part] | None:
        """The registers a read of `count` words from `address` covers, or None (exception 2)."""
        i = self.start(address)
        if i is None:
            return None
        offset, left, parts = address - self.starts[i], count, []
        while True:
            reg = self.entries[self.starts[i]]
            n = min(reg.words - offset, left)
            parts.append((reg, offset, n))
            left -= n
            if left == 0:
                return parts
            i += 1
            if i == len(self.starts) or self.starts[i] != reg.end:
                return None
            offset = 0
