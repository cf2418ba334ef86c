"""Older dbus_modbustcp releases: the generated per-release table, the server's walk over it, and the
collector's planner learning each release's gaps (request count per poll, fallbacks, what is missing)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from collector.config import GxSettings
from collector.gx import tables
from collector.gx.blocks import Block, Gaps, ReadPlan, find_gaps, plan_reads
from collector.gx.firmware import consistent_releases, distrusted, layout, releases
from collector.simulator.modbus_server import RegisterMap, build_map
from collector.sources.modbus import plan_roles
from deploy.gen_firmware_table import build, convert

MAX_REQUESTS_PER_POLL = 8


def unit_map(release: str) -> RegisterMap:
    """The release's one address map (shared by every unit id)."""
    return build_map(layout=layout(release))


def served(release: str, service: str, address: int) -> tables.Register | None:
    return next((r for r in layout(release) if r.service == service and r.address == address), None)


def test_the_table_holds_the_four_releases_oldest_first() -> None:
    assert releases() == ("v1.0.42", "v1.0.77", "v1.0.94", "v1.0.101")


@pytest.mark.parametrize(
    ("service", "address", "path", "since"),
    [
        ("battery", 256, "/Dc/0/Power", "v1.0.94"),  # int32 battery power: added in v1.0.78
        ("battery", 258, "/Dc/0/Power", "v1.0.42"),  # the int16 copy: in every release
        ("system", 830, "/Timestamp", "v1.0.77"),  # UTC seconds: added in v1.0.53
        ("system", 847, "", "v1.0.101"),  # reserved filler: added in v1.0.95
        ("system", 884, "/Ac/PvOnOutput/L1/Power", "v1.0.94"),  # 32-bit AC powers: added in v1.0.78
    ],
)
def test_registers_appear_in_the_release_that_added_them(service: str, address: int, path: str, since: str) -> None:
    for release in releases():
        reg = served(release, service, address)
        older = releases().index(release) < releases().index(since)
        assert (reg is None) == older, (release, address)
        if reg is not None:
            assert reg.path == path


def test_the_current_release_serves_registers_csv_as_it_is_written() -> None:
    current = {(r.service, r.address): r for r in layout("v1.0.101")}
    differs = [
        r
        for r in tables.registers()
        if current.get((r.service, r.address)) != replace(r, fallback_for=None, read="always") and r.type != "reserved"
    ]
    assert [(r.service, r.address) for r in differs] == []


def test_the_generator_keeps_our_spelling_expands_reserved_and_merges_releases() -> None:
    old = [
        ["com.victronenergy.battery", "/Dc/0/Power", "d", "W", "258", "int16", "1", "R"],
        ["com.victronenergy.system", "RESERVED", "d", "", "827", "reserved[3]", "1", "R"],
        ["com.victronenergy.system", "/DateAndTime", "d", "", "830", "INTERNAL", "1", "R"],
        ["com.victronenergy.vebus", "/Mode", "u", "", "33", "uint16", "1", "W"],
    ]
    rows = convert(old)
    assert rows[0][5] == "/Dc/0/Power#16"
    assert [r[1] for r in rows[1:4]] == [827, 828, 829] and {r[2] for r in rows[1:4]} == {"reserved"}
    assert rows[4][1:3] == (830, "uint64") and rows[4][5] == "/Timestamp"
    assert len(rows) == 5  # vebus is not simulated
    text = build({"v1.0.77": rows, "v1.0.42": rows[:1]})
    assert "battery,258,int16,1,W,/Dc/0/Power#16,r,v1.0.42 v1.0.77" in text


# --- the server's walk (dbus_modbustcp Mappings::DataIterator) -------------------------------------------
@pytest.mark.parametrize("release", ["v1.0.42", "v1.0.77", "v1.0.94"])
def test_before_v1_0_95_the_system_block_808_860_is_refused(release: str) -> None:
    umap = unit_map(release)
    assert umap.walk(808, 53) is None
    assert umap.walk(840, 7) is not None


def test_in_v1_0_101_the_system_block_808_860_is_served() -> None:
    assert unit_map("v1.0.101").walk(808, 53) is not None


def test_before_v1_0_95_a_read_cannot_run_from_a_register_into_one_that_overlaps_it() -> None:
    umap = unit_map("v1.0.77")  # 1318 is string[4] (1318-1321) and /Mode sits at 1319
    assert umap.walk(1318, 4) is not None
    assert umap.walk(1319, 1) is not None
    assert umap.walk(1314, 9) is None  # 1314..1322: from 1318 the next entry starts at 1319, not 1322
    assert unit_map("v1.0.101").walk(1314, 9) is not None


def test_a_read_may_start_inside_a_register() -> None:
    parts = unit_map("v1.0.101").walk(831, 3)
    assert parts is not None and parts[0][0].address == 830 and parts[0][1:] == (1, 3)


# --- the planner against each release ---------------------------------------------------------------------
def learn(release: str, mqtt: bool = True) -> tuple[dict[str, ReadPlan], int, tuple[str, ...]]:
    """As the poller does against this release: plan every role, learn each unit's gaps by bisection, then
    judge which known releases fit what was served and distrust what those serve with another meaning.
    `mqtt`: [gx] mqtt_enabled (then registers marked read=in_block are read only inside other blocks)."""
    umap = unit_map(release)
    gaps: dict[int, Gaps] = {}
    served_reads: dict[tuple[int, int], bool] = {}
    plans = plan_roles(GxSettings(mqtt_enabled=mqtt))

    def read_ok(block: Block) -> bool:
        served_reads[(block.address, block.count)] = umap.walk(block.address, block.count) is not None
        return served_reads[(block.address, block.count)]

    for plan in plans:
        for _ in range(8):
            rp = plan_reads(plan.registers, plan.paths, gaps.get(plan.unit, Gaps()), in_block=plan.in_block)
            refused = [b for b in rp.blocks if not read_ok(b)]
            if not refused:
                break
            for block in refused:
                gaps[plan.unit] = gaps.get(plan.unit, Gaps()) | find_gaps(plan.registers, block, read_ok)
    probes = len(served_reads)
    candidates = consistent_releases(served_reads)
    result: dict[str, ReadPlan] = {}
    for plan in plans:
        regs = [r for p in plans if p.unit == plan.unit for r in p.registers]
        unit_gaps = replace(gaps.get(plan.unit, Gaps()), distrusted=distrusted(regs, candidates))
        result[plan.role] = plan_reads(plan.registers, plan.paths, unit_gaps, in_block=plan.in_block)
    return result, probes, candidates


def wanted_release_gives(release: str, role: str) -> set[str]:
    """The stored paths of a role this release serves at our primary register's or its fallback's address."""
    service = tables.ROLE_SERVICE[role]
    plan = next(p for p in plan_roles(GxSettings()) if p.role == role)
    out = set()
    for reg in plan.registers:
        if reg.path in plan.paths and ("#" not in reg.dbus_path or reg.fallback_for is not None):
            there = served(release, service, reg.address)
            if there is not None and there.path == reg.path and there.words == reg.words:
                out.add(reg.path)
    return out


def fewest_requests(umap: RegisterMap, sources: list[tables.Register]) -> int:
    """The fewest reads that cover `sources` on this release: consecutive sources share a read only when the
    release serves the whole span between them (computed from the release's map, not by the planner)."""
    ordered = sorted(sources, key=lambda r: r.address)
    count, first = (1, ordered[0]) if ordered else (0, None)
    for reg in ordered[1:]:
        assert first is not None
        if reg.end - first.address > 125 or umap.walk(first.address, reg.end - first.address) is None:
            count, first = count + 1, reg
    return count


def needed(sources: list[tables.Register], mqtt: bool) -> list[tables.Register]:
    """The sources a poll must read: all of them, less those registers.csv marks read=in_block while MQTT
    (which gives the same values) is on."""
    return [r for r in sources if not (mqtt and r.read == "in_block")]


def fewest_for(release: str, mqtt: bool = True) -> int:
    """The fewest reads per poll this release allows for what a poll must read there (registers read only
    inside another block cost none)."""
    learned, umap = learn(release, mqtt)[0], unit_map(release)
    plans = plan_roles(GxSettings(mqtt_enabled=mqtt))
    return sum(fewest_requests(umap, needed(list(learned[p.role].sources), mqtt)) for p in plans)


def check_release(release: str, mqtt: bool) -> tuple[int, int]:
    """Learn the release as the poller does and check the plan reads what the release gives, with blocks it
    serves; returns (requests per poll, the fewest the release allows)."""
    learned, probes, candidates = learn(release, mqtt)
    assert candidates == (release,), "what the GX served tells its release apart from the others"
    umap = unit_map(release)
    requests = fewest = 0
    for plan in plan_roles(GxSettings(mqtt_enabled=mqtt)):
        rp = learned[plan.role]
        assert all(umap.walk(b.address, b.count) is not None for b in rp.blocks)
        # exactly what the release gives: nothing it lacks, nothing it serves with another meaning (battery
        # 1322-1327 before v1.0.95, 327-329 reserved on v1.0.94); what is skipped is left to MQTT
        # (registers read only inside a block, read=in_block, that stand alone are skipped unprobed: MQTT gives
        # them whether the release serves them or not)
        read, gives = {r.path for r in rp.sources}, wanted_release_gives(release, plan.role)
        assert read <= gives <= read | set(rp.skipped), (release, plan.role)
        in_block = {r.path for r in plan.registers if r.read == "in_block"}
        assert set(rp.skipped) - gives <= in_block, (release, plan.role)
        assert not read & set(rp.skipped)
        requests += len(rp.blocks)
        fewest += fewest_requests(umap, needed(list(rp.sources), mqtt))
    print(f"{release} (mqtt {mqtt}): {requests} requests per poll (fewest possible {fewest}), {probes} to learn")
    assert requests == fewest, (release, requests, fewest)
    return requests, fewest


# With MQTT on (the default), /Dc/Charger/Power (855, read=in_block) costs no request of its own: 9/8/9/5
# requests per poll become 8/7/8/5. See docs/collector.md, "Older firmware".
@pytest.mark.parametrize("release", ["v1.0.42", "v1.0.77", "v1.0.94", "v1.0.101"])
def test_on_every_release_a_poll_takes_at_most_8_requests_the_fewest_and_reads_all_the_release_gives(
    release: str,
) -> None:
    requests, _ = check_release(release, mqtt=True)
    assert requests <= MAX_REQUESTS_PER_POLL, (release, requests)


# Without MQTT nothing else gives the read=in_block values: they are read every poll, at the cost of a
# request where they stand alone (9/8/9/5), so that nothing is lost.
@pytest.mark.parametrize("release", ["v1.0.42", "v1.0.77", "v1.0.94", "v1.0.101"])
def test_without_mqtt_every_register_is_read_with_the_fewest_requests(release: str) -> None:
    check_release(release, mqtt=False)
    system = learn(release, mqtt=False)[0]["system"]
    assert "/Dc/Charger/Power" in {r.path for r in system.sources} and system.skipped == ()


@pytest.mark.parametrize(
    ("release", "read_over_modbus"), [("v1.0.42", False), ("v1.0.77", False), ("v1.0.94", False), ("v1.0.101", True)]
)
def test_the_dc_charger_power_is_read_over_modbus_only_inside_the_system_block(
    release: str, read_over_modbus: bool
) -> None:
    """855 stands alone between unserved 852-854 and 856-859 before v1.0.95; from v1.0.95 it lies inside
    the block 826-913 read for the others."""
    system = learn(release)[0]["system"]
    assert ("/Dc/Charger/Power" in {r.path for r in system.sources}) == read_over_modbus
    assert ("/Dc/Charger/Power" in system.skipped) == (not read_over_modbus)
    assert {p for p in system.skipped if not p.startswith("/DynamicEss/")} <= {"/Dc/Charger/Power"}  # 5400-5407: MQTT
    assert any(b.address <= 855 < b.end for b in system.blocks) == read_over_modbus


@pytest.mark.parametrize(("release", "source"), [("v1.0.42", 258), ("v1.0.77", 258), ("v1.0.94", 256)])
def test_battery_power_falls_back_to_the_int16_register_before_v1_0_78(release: str, source: int) -> None:
    learned = learn(release)[0]
    for role in ("shunt", "bms"):
        power = [r for r in learned[role].sources if r.path == "/Dc/0/Power"]
        assert [r.address for r in power] == [source]


def test_what_an_older_release_serves_with_another_meaning_is_distrusted() -> None:
    battery = tables.registers_for("battery")
    assert distrusted(battery, ["v1.0.94"]) == {327, 328, 329, 1322, 1323, 1324, 1325, 1326, 1327}
    assert distrusted(battery, ["v1.0.101"]) == frozenset()
    assert consistent_releases({}) == ()  # nothing observed: nothing judged, registers.csv is trusted
