"""Block planning: contiguous, mapped-only, <= 125 registers, covering every wanted path."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from collector.gx import tables
from collector.gx.blocks import Block, Gaps, find_gaps, plan_blocks, plan_reads
from collector.gx.tables import Register


def all_paths(service: str) -> list[str]:
    return [r.path for r in tables.registers_for(service) if r.dbus_path]


def mapped_addresses(service: str) -> set[int]:
    return {a for r in tables.registers_for(service) for a in range(r.address, r.end)}


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        # the plain rows end with the 32-bit powers at 918-919 (their 16-bit '#16' copies at 808-825)
        ("system", [Block(800, 120), Block(5400, 8)]),  # and the Dynamic ESS state 5400-5407
        ("battery", [Block(256, 74), Block(1282, 62)]),  # 330 is the '#Ah' copy of /ConsumedAmphours
        ("settings", [Block(2900, 4), Block(5423, 8)]),  # and the Dynamic ESS mode and slot 0, 5423-5430
    ],
)
def test_when_every_path_wanted_then_blocks_end_at_the_last_primary_register(
    service: str, expected: list[Block]
) -> None:
    assert plan_blocks(tables.registers_for(service), all_paths(service)) == expected


@pytest.mark.parametrize("role", ["system", "settings", "shunt", "bms"])
def test_when_stored_paths_planned_then_blocks_cover_them_and_only_mapped_addresses(role: str) -> None:
    service = tables.ROLE_SERVICE[role]
    regs = tables.registers_for(service)
    by_path = tables.register_by_path(service)
    wanted = [s.path for s in tables.fields() if s.role == role and s.path in by_path]
    assert wanted, "every role stores something readable over Modbus"
    blocks = plan_blocks(regs, wanted)
    covered = {a for b in blocks for a in range(b.address, b.end)}
    mapped = mapped_addresses(service)
    assert covered <= mapped
    for path in wanted:
        reg = by_path[path]
        assert set(range(reg.address, reg.end)) <= covered, path
    assert all(1 <= b.count <= 125 for b in blocks)


def test_when_path_only_on_mqtt_then_no_block() -> None:
    assert plan_blocks(tables.registers_for("battery"), ["/Voltages/Cell1"]) == []


def test_when_wanted_paths_are_far_apart_in_one_run_then_block_spans_between_them() -> None:
    blocks = plan_blocks(tables.registers_for("battery"), ["/Dc/0/Voltage", "/Soc"])
    assert blocks == [Block(259, 266 - 259 + 1)]


def test_when_wanted_paths_in_two_runs_then_no_block_crosses_the_gap() -> None:
    blocks = plan_blocks(tables.registers_for("battery"), ["/Soc", "/System/NrOfCellsPerBattery"])
    assert blocks == [Block(266, 1), Block(1289, 1)]


def test_when_run_longer_than_limit_then_split_without_cutting_a_register() -> None:
    regs = [Register("x", 10 + 2 * i, "uint32", 2, 1.0, "", f"/P{i}", False) for i in range(100)]
    blocks = plan_blocks(regs, [r.path for r in regs])
    assert sum(b.count for b in blocks) == 200
    assert all(b.count <= 125 and b.count % 2 == 0 for b in blocks)
    assert blocks[0].address == 10 and blocks[-1].end == 210
    assert all(a.end == b.address for a, b in itertools.pairwise(blocks))


def test_when_limit_is_small_then_blocks_respect_it() -> None:
    blocks = plan_blocks(tables.registers_for("system"), all_paths("system"), max_registers=10)
    assert all(b.count <= 10 for b in blocks)
    assert blocks[0].address == 800 and blocks[-1].end == 5408


def test_when_the_stored_system_powers_are_planned_then_the_32_bit_registers_are_read() -> None:
    regs = tables.registers_for("system")
    wanted = [s.path for s in tables.fields() if s.role == "system"]
    blocks = plan_blocks(regs, wanted)
    covered = {a for b in blocks for a in range(b.address, b.end)}
    for path in ("/Ac/Grid/L1/Power", "/Ac/Consumption/L1/Power", "/Ac/PvOnOutput/L1/Power", "/Ac/PvOnGrid/L3/Power"):
        reg = tables.register_by_path("system")[path]
        assert reg.type.endswith("32"), (path, reg)
        assert {reg.address, reg.address + 1} <= covered, path
    assert not covered & set(range(808, 826)), "the 16-bit copies are not read when the 32-bit ones exist"


def regs_at(*addresses: int) -> list[Register]:
    return [Register("x", a, "uint16", 1, 1.0, "", f"/P{a}", False) for a in addresses]


def test_when_bisecting_a_refused_block_then_holes_and_seams_are_found() -> None:
    regs = regs_at(*range(10, 30))
    holes, seam = {14, 15, 22}, 26  # 14, 15, 22 refuse alone; 25 -> 26 cannot be crossed

    def read_ok(block: Block) -> bool:
        span = set(range(block.address, block.end))
        return not span & holes and not {seam - 1, seam} <= span

    gaps = find_gaps(regs, Block(10, 20), read_ok)
    assert gaps == Gaps(frozenset(holes), frozenset({seam}))
    blocks = plan_reads(regs, [r.path for r in regs], gaps).blocks
    assert blocks == (Block(10, 4), Block(16, 6), Block(23, 3), Block(26, 4))
    assert all(read_ok(b) for b in blocks)


def test_when_a_register_is_a_hole_then_its_fallback_is_read_under_the_same_path() -> None:
    battery = tables.registers_for("battery")
    plan = plan_reads(battery, ["/Dc/0/Power", "/Soc"], Gaps(holes=frozenset({256, 257})))
    assert [(r.address, r.path) for r in plan.sources] == [(258, "/Dc/0/Power"), (266, "/Soc")]
    assert plan.blocks == (Block(258, 9),) and plan.missing == ()
    both = plan_reads(battery, ["/Dc/0/Power"], Gaps(holes=frozenset({256, 257, 258})))
    assert both.sources == () and both.missing == ("/Dc/0/Power",)


def test_a_fallback_must_name_the_primary_register_of_its_path() -> None:
    bad = {"service": "battery", "address": "258", "type": "int16", "scale": "1", "unit": "W"}
    reg = tables.parse_register(bad | {"dbus_path": "/Dc/0/Power#16", "access": "r", "fallback_for": "259"})
    with pytest.raises(ValueError, match="fallback for 259"):
        tables._check_fallbacks([*(r for r in tables.registers_for("battery") if r.address != 258), reg])


def test_a_register_marked_in_block_sets_no_block_bounds_and_is_read_only_inside_one() -> None:
    def marked(*addresses: int) -> list[Register]:
        return [replace(r, read="in_block") if r.address in addresses else r for r in regs_at(*range(10, 31))]

    paths = ["/P10", "/P11", "/P12", "/P15", "/P20", "/P30"]
    gaps = Gaps(holes=frozenset({13, 14, 16}))  # 15 stands alone between holes
    alone = plan_reads(marked(15), paths, gaps, in_block=True)
    assert alone.blocks == (Block(10, 3), Block(20, 11)) and alone.skipped == ("/P15",) and alone.missing == ()
    assert 15 not in {r.address for r in alone.sources}
    # without MQTT (in_block=False) the mark is ignored: the register costs a read of its own, nothing is lost
    plain = plan_reads(marked(15), paths, gaps, in_block=False)
    assert plain.blocks == (Block(10, 3), Block(15, 1), Block(20, 11)) and plain.skipped == ()
    # inside a block read anyway it is read; at a block's edge it does not stretch the block
    inside = plan_reads(marked(11, 12, 15), paths, gaps, in_block=True)
    assert inside.blocks == (Block(10, 1), Block(20, 11)) and inside.skipped == ("/P11", "/P12", "/P15")
    within = plan_reads(marked(11, 25), [*paths, "/P25"], gaps, in_block=True)
    assert within.blocks == (Block(10, 3), Block(15, 1), Block(20, 11)) and within.skipped == ()
    assert {11, 25} <= {r.address for r in within.sources}


def test_an_unknown_read_mark_is_refused() -> None:
    row = {"service": "system", "address": "855", "type": "uint16", "scale": "1", "unit": "W"}
    with pytest.raises(ValueError, match="unknown read 'sometimes'"):
        tables.parse_register(row | {"dbus_path": "/Dc/Charger/Power", "access": "r", "read": "sometimes"})
