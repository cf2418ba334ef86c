"""Plan contiguous Modbus block reads from the register map (pure).

The GX fails a whole request when it starts on, or crosses, an unmapped address (exception 2), and it
takes at most 125 registers per read. So a block covers only mapped addresses, never splits a
multi-word register, and spans from the first to the last wanted register of one mapped run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from collector.gx.tables import Register

MAX_REGISTERS = 125


@dataclass(frozen=True, slots=True)
class Block:
    """One read: `count` registers from `address` (0-based, FC3)."""

    address: int
    count: int

    @property
    def end(self) -> int:
        """One past the last address covered."""
        return self.address + self.count


def mapped_runs(registers: Sequence[Register]) -> list[list[Register]]:
    """The registers grouped into runs of contiguous mapped addresses (sorted by address)."""
    runs: list[list[Register]] = []
    for reg in sorted(registers, key=lambda r: r.address):
        if runs and reg.address == runs[-1][-1].end:
            runs[-1].append(reg)
        else:
            runs.append([reg])
    return runs


def _split(regs: list[Register], max_registers: int) -> list[Block]:
    blocks: list[Block] = []
    start = regs[0].address
    end = start
    for reg in regs:
        if reg.end - start > max_registers:
            blocks.append(Block(start, end - start))
            start = reg.address
        end = reg.end
    blocks.append(Block(start, end - start))
    return blocks


def plan_blocks(registers: Sequence[Register], paths: Iterable[str], max_registers: int = MAX_REGISTERS) -> list[Block]:
    """Blocks of <= max_registers covering every register whose D-Bus path is wanted.

    Paths not in the map are ignored (they may be MQTT-only, e.g. per-cell voltages).
    """
    wanted = set(paths)
    blocks: list[Block] = []
    for run in mapped_runs(registers):
        hits = [i for i, reg in enumerate(run) if reg.dbus_path and reg.path in wanted and "#" not in reg.dbus_path]
        if hits:
            blocks.extend(_split(run[hits[0] : hits[-1] + 1], max_registers))
    return blocks
