"""Plan contiguous Modbus block reads from the register map, around what a unit does not serve (pure).

The GX's server (dbus_modbustcp) walks its register map from the start address and fails the whole
request with exception 2 when the start address is not mapped or when the next mapped register does not
begin where the previous one ended; it takes at most 125 registers per read. So a block covers only
served addresses, never splits a multi-word register, and spans from the first to the last wanted
register of one served run.

Older firmware serves fewer registers (see docs/collector.md, "Older firmware"). What a unit was found not
to serve is a `Gaps`: holes (addresses that refuse even alone) and seams (addresses a read cannot cross
into from the address before, e.g. where an older map has overlapping entries). `find_gaps` learns them
by bisecting a refused block; `plan_reads` plans around them and, for a wanted path whose register is a
hole, reads the older register that registers.csv names as its fallback. A register registers.csv marks
`read=in_block` (MQTT gives the same value) is, when the caller says MQTT is on, read only where it lies
inside a block the other registers need anyway: it never costs a request of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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


@dataclass(frozen=True, slots=True)
class Gaps:
    """What one unit does not serve: holes (refused addresses) and seams (a read cannot cross into them)."""

    holes: frozenset[int] = frozenset()
    seams: frozenset[int] = frozenset()
    distrusted: frozenset[int] = frozenset()  # registers served there with another meaning: never a source

    def readable(self, reg: Register) -> bool:
        """Whether none of the register's addresses is a hole."""
        return not any(a in self.holes for a in range(reg.address, reg.end))

    def __or__(self, other: Gaps) -> Gaps:
        return Gaps(self.holes | other.holes, self.seams | other.seams, self.distrusted | other.distrusted)

    def __bool__(self) -> bool:
        return bool(self.holes or self.seams or self.distrusted)


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """The reads for one unit and service: blocks, the register that gives each wanted path, what is missing."""

    blocks: tuple[Block, ...]
    sources: tuple[Register, ...]  # one per readable wanted path: its own register or its fallback
    missing: tuple[str, ...]  # wanted paths with no readable register on this unit
    skipped: tuple[str, ...] = ()  # wanted paths whose read=in_block register lies in no block (left to MQTT)

    @property
    def fallbacks(self) -> tuple[Register, ...]:
        """The sources that are an older register standing in for the preferred one."""
        return tuple(r for r in self.sources if r.fallback_for is not None)


def mapped_runs(registers: Sequence[Register], gaps: Gaps = Gaps()) -> list[list[Register]]:
    """The readable registers grouped into runs a single read may span (sorted by address)."""
    runs: list[list[Register]] = []
    for reg in sorted(registers, key=lambda r: r.address):
        if not gaps.readable(reg):
            continue
        if runs and reg.address == runs[-1][-1].end and reg.address not in gaps.seams:
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


def choose_sources(
    registers: Sequence[Register], paths: Iterable[str], gaps: Gaps = Gaps()
) -> tuple[list[Register], list[str]]:
    """For each wanted path its primary register, else a readable fallback; and the paths with neither."""
    primary = {r.dbus_path: r for r in registers if r.dbus_path and "#" not in r.dbus_path}
    sources: list[Register] = []
    missing: list[str] = []
    for path in sorted(set(paths)):
        reg = primary.get(path)
        if reg is None:
            continue  # not on Modbus (MQTT-only, e.g. per-cell voltages)
        if gaps.readable(reg) and reg.address not in gaps.distrusted:
            sources.append(reg)
            continue
        older = [
            r
            for r in registers
            if r.fallback_for == reg.address and gaps.readable(r) and r.address not in gaps.distrusted
        ]
        if older:
            sources.append(older[0])
        else:
            missing.append(path)
    return sources, missing


def plan_reads(
    registers: Sequence[Register],
    paths: Iterable[str],
    gaps: Gaps = Gaps(),
    max_registers: int = MAX_REGISTERS,
    in_block: bool = False,
) -> ReadPlan:
    """Blocks of <= max_registers covering the register chosen for every wanted path, around `gaps`.

    `in_block` (MQTT gives the same values): a chosen register marked read=in_block sets no block's
    bounds; it is read only when it lies inside a block planned for the others, else its path is skipped."""
    sources, missing = choose_sources(registers, paths, gaps)
    wanted = {r.address for r in sources if not (in_block and r.read == "in_block")}
    blocks: list[Block] = []
    for run in mapped_runs(registers, gaps):
        hits = [i for i, reg in enumerate(run) if reg.address in wanted]
        if hits:
            blocks.extend(_split(run[hits[0] : hits[-1] + 1], max_registers))
    read = [r for r in sources if any(b.address <= r.address and r.end <= b.end for b in blocks)]
    skipped = sorted(r.path for r in sources if r not in read)
    return ReadPlan(tuple(blocks), tuple(sorted(read, key=lambda r: r.address)), tuple(missing), tuple(skipped))


def plan_blocks(registers: Sequence[Register], paths: Iterable[str], max_registers: int = MAX_REGISTERS) -> list[Block]:
    """Blocks of <= max_registers covering every register whose D-Bus path is wanted (nothing unserved).

    Paths not in the map are ignored (they may be MQTT-only, e.g. per-cell voltages).
    """
    return list(plan_reads(registers, paths, Gaps(), max_registers).blocks)


def find_gaps(registers: Sequence[Register], block: Block, read_ok: Callable[[Block], bool]) -> Gaps:
    """Bisect a refused `block` along register boundaries: which registers refuse even alone (holes) and
    where two readable halves cannot be read as one (seams). `read_ok` asks the unit; it is called about
    2·k·log2(n) times for k gaps among n registers."""
    regs = [r for r in sorted(registers, key=lambda r: r.address) if block.address <= r.address and r.end <= block.end]
    holes: set[int] = set()
    seams: set[int] = set()

    def probe(part: list[Register]) -> bool:
        """True when the part is read whole; records what refuses otherwise."""
        if read_ok(Block(part[0].address, part[-1].end - part[0].address)):
            return True
        if len(part) == 1:
            holes.update(range(part[0].address, part[0].end))
            return False
        mid = len(part) // 2
        left, right = probe(part[:mid]), probe(part[mid:])
        if left and right:
            seams.add(part[mid].address)
        return False

    if regs:
        probe(regs)
    return Gaps(frozenset(holes), frozenset(seams))
