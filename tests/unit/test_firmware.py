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
from collector.sources.modbus_plan import plan_roles
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
        ["com.victronenergy.genset", "/Engine/Load", "d", "%", "3204", "uint16", "1", "R"],
    ]
    rows = convert(old)
    assert rows[0][5] == "/Dc/0/Power#16"
    assert [r[1] for r in rows[1:4]] == [827, 828, 829] and {r[2] for r in rows[1:4]} == {"reserved"}
    assert rows[4][1:3] == (830, "uint64") and rows[4][5] == "/Timestamp"
    assert len(rows) == 5  # the genset is not a service registers.csv maps
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
DEVICES = ("vebus/276", "multi/0", "acsystem/1", "solarcharger/279", "grid/30", "acload/31", "pvinverter/32")


def settings(mqtt: bool = True, devices: tuple[str, ...] = ()) -> GxSettings:
    return GxSettings(mqtt_enabled=mqtt, modbus_devices=list(devices))


def learn(
    release: str, mqtt: bool = True, devices: tuple[str, ...] = ()
) -> tuple[dict[str, ReadPlan], int, tuple[str, ...]]:
    """As the poller does against this release: plan every role, learn each unit's gaps by bisection, then
    judge which known releases fit what was served and distrust what those serve with another meaning.
    `mqtt`: [gx] mqtt_enabled (then registers marked read=in_block are read only inside other blocks)."""
    umap = unit_map(release)
    gaps: dict[int, Gaps] = {}
    served_reads: dict[tuple[int, int], bool] = {}
    plans = plan_roles(settings(mqtt, devices))

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
        result[plan.key] = plan_reads(plan.registers, plan.paths, unit_gaps, in_block=plan.in_block)
    return result, probes, candidates


def wanted_release_gives(release: str, key: str, devices: tuple[str, ...] = ()) -> set[str]:
    """The stored paths of a role (or device) this release serves at our primary register's or its fallback's
    address."""
    plan = next(p for p in plan_roles(settings(True, devices)) if p.key == key)
    service = tables.ROLE_SERVICE[plan.role]
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
    return sum(fewest_requests(umap, needed(list(learned[p.key].sources), mqtt)) for p in plans)


def check_release(release: str, mqtt: bool, devices: tuple[str, ...] = ()) -> tuple[int, int]:
    """Learn the release as the poller does and check the plan reads what the release gives, with blocks it
    serves; returns (requests per poll, the fewest the release allows)."""
    learned, probes, candidates = learn(release, mqtt, devices)
    assert candidates == (release,), "what the GX served tells its release apart from the others"
    umap = unit_map(release)
    requests = fewest = 0
    for plan in plan_roles(settings(mqtt, devices)):
        rp = learned[plan.key]
        assert all(umap.walk(b.address, b.count) is not None for b in rp.blocks)
        # exactly what the release gives: nothing it lacks, nothing it serves with another meaning (battery
        # 1322-1327 before v1.0.95, 327-329 reserved on v1.0.94); what is skipped is left to MQTT
        # (registers read only inside a block, read=in_block, that stand alone are skipped unprobed: MQTT gives
        # them whether the release serves them or not)
        read, gives = {r.path for r in rp.sources}, wanted_release_gives(release, plan.key, devices)
        assert read <= gives <= read | set(rp.skipped), (release, plan.key)
        in_block = {r.path for r in plan.registers if r.read == "in_block"}
        assert set(rp.skipped) - gives <= in_block, (release, plan.key)
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


# The inverter/charger, solar charger and meter services, one device of each on its own unit id: the plan
# still reads exactly what each release gives with the fewest requests (older releases lack the 32-bit
# powers, the solar charger's uint32 yield power and the acsystem service; their gaps are learned).
@pytest.mark.parametrize("mqtt", [True, False])
@pytest.mark.parametrize("release", ["v1.0.42", "v1.0.77", "v1.0.94", "v1.0.101"])
def test_with_every_device_service_each_release_is_read_with_the_fewest_requests(release: str, mqtt: bool) -> None:
    check_release(release, mqtt, DEVICES)


@pytest.mark.parametrize(
    ("service", "address", "path", "since"),
    [
        ("vebus", 96, "/Hub4/L1/AcPowerSetpoint", "v1.0.77"),  # int32 ESS setpoint
        ("vebus", 37, "/Hub4/L1/AcPowerSetpoint", "v1.0.42"),  # its int16 copy: in every release
        ("solarcharger", 792, "/Yield/Power", "v1.0.94"),  # uint32 PV power
        ("grid", 2638, "/Ac/L1/Power", "v1.0.77"),  # int32 per-phase power
        ("acload", 3924, "/Ac/L1/Power", "v1.0.94"),
        ("pvinverter", 1058, "/Ac/L1/Power", "v1.0.77"),
        ("acsystem", 4901, "/Ac/In/1/L1/V", "v1.0.77"),  # the service itself
    ],
)
def test_device_registers_appear_in_the_release_that_added_them(
    service: str, address: int, path: str, since: str
) -> None:
    test_registers_appear_in_the_release_that_added_them(service, address, path, since)


@pytest.mark.parametrize(
    ("release", "sources"),
    [
        ("v1.0.42", {"grid/30": 2600, "solarcharger/279": 789, "vebus/276": 37}),
        ("v1.0.77", {"grid/30": 2638, "solarcharger/279": 789, "vebus/276": 96}),
        ("v1.0.101", {"grid/30": 2638, "solarcharger/279": 792, "vebus/276": 96}),
    ],
)
def test_without_mqtt_older_releases_fall_back_to_the_16_bit_registers(release: str, sources: dict[str, int]) -> None:
    learned = learn(release, mqtt=False, devices=DEVICES)[0]
    paths = {"grid/30": "/Ac/L1/Power", "solarcharger/279": "/Yield/Power", "vebus/276": "/Hub4/L1/AcPowerSetpoint"}
    for key, address in sources.items():
        assert [r.address for r in learned[key].sources if r.path == paths[key]] == [address], (release, key)


def test_each_device_is_read_on_the_unit_id_of_its_instance() -> None:
    plans = {p.key: p for p in plan_roles(settings(True, (*DEVICES, "grid/40@41")))}
    units = {key: plans[key].unit for key in ("vebus/276", "multi/0", "solarcharger/279", "grid/30", "grid/40")}
    assert units == {"vebus/276": 227, "multi/0": 100, "solarcharger/279": 226, "grid/30": 30, "grid/40": 41}
    assert plans["vebus/276"].role == "vebus" and plans["vebus/276"].instance == 276
    assert plans["system"].instance is None


@pytest.mark.parametrize("text", ["vebus", "vebus/x", "tank/3", "grid/30@300", "battery/512", "vebus/600"])
def test_a_bad_modbus_device_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ValueError, match="modbus_devices"):
        GxSettings(modbus_devices=[text])
