"""The GX's plan end to end: the simulated GX publishes its Dynamic ESS schedule over MQTT, the collector (a
subprocess, real mosquitto and influxd) stores it in gx_plan as snapshots; a new plan is a new snapshot in
which a slot no longer used shows as Start 0; the live /DynamicEss/* land at 1 Hz; nothing is double-stored
in the long tail."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bess_common.influx import InfluxClient
from collector.simulator.gx import GxSimulator
from collector.simulator.physics import BessPhysics
from collector.simulator.profiles import DAY_S
from collector.simulator.schedule import DESS_SLOTS, ESS_SLOTS, ISSUE_S, Schedule
from deploy.localservices import InfluxServer, MosquittoServer
from tests.integration.pipeline import CollectorProcess, write_config
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def _issue_dropping_a_slot() -> tuple[int, int]:
    """(seed, day) whose plan issued on `day` uses fewer slots than the one issued the day before."""
    for seed in range(40):
        schedule = BessPhysics(seed, cells=4).schedule
        for day in range(20_400, 20_460):
            if len(schedule.issued(day)) < len(schedule.issued(day - 1)):
                return seed, day
    raise AssertionError("no plan drops a slot")


class SimClock:
    """The simulated GX's clock: real time shifted by an offset the test moves."""

    def __init__(self, at_s: float) -> None:
        self.offset_s = at_s - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset_s

    def jump_to(self, at_s: float) -> None:
        self.offset_s = at_s - time.time()


def _snapshots(influx: InfluxClient) -> dict[int, dict[tuple[str, str], dict[str, object]]]:
    out: dict[int, dict[tuple[str, str], dict[str, object]]] = {}
    for series in influx.query("SELECT * FROM gx_plan GROUP BY kind, slot"):
        for row in series.rows():
            fields = {k: v for k, v in row.items() if k not in ("time", "site") and v is not None}
            out.setdefault(int(row["time"]), {})[(series.tags["kind"], series.tags["slot"])] = fields
    return out


def _at_least(
    snapshots: dict[int, dict[tuple[str, str], dict[str, object]]], n: int
) -> dict[int, dict[tuple[str, str], dict[str, object]]] | None:
    return snapshots if len(snapshots) >= n else None


def _used(snapshot: dict[tuple[str, str], dict[str, object]]) -> list[tuple[int, float]]:
    return sorted(
        (int(str(f["start_s"])), float(str(f["soc_pct"])))
        for (kind, _), f in snapshot.items()
        if kind == "dess" and f["start_s"]
    )


def test_the_plan_lands_as_snapshots_and_a_new_plan_shows_the_removed_slot(
    influx_server: InfluxServer, influx: InfluxClient, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    seed, day = _issue_dropping_a_slot()
    schedule: Schedule = BessPhysics(seed, cells=4).schedule
    issue_s = day * DAY_S + ISSUE_S
    clock = SimClock(issue_s - 600)
    sim = GxSimulator(seed, modbus_port=0, mqtt_port=mosquitto.port, cells=4, clock=clock).start()
    config = write_config(
        tmp_path / "c.toml", influx_server.url, modbus_port=sim.modbus_port, mqtt_port=mosquitto.port,
        buffer_dir=tmp_path / "buffer", portal_id=sim.portal_id,
    )  # fmt: skip
    collector = CollectorProcess(config, tmp_path / "collector.log").start()
    try:
        first = wait_until(lambda: _snapshots(influx), 40, "the first gx_plan snapshot")
        clock.jump_to(issue_s - 1)  # the GX's clock reaches the next issue: a new plan
        both = wait_until(lambda: _at_least(_snapshots(influx), 2), 30, "a second snapshot")
        wait_until(lambda: influx.query("SELECT last(dess_error_code) FROM system"), 10, "the dess_* fields")
    finally:
        code = collector.stop()
        sim.stop()
    assert code == 0, collector.log()[-3000:]

    [(t0, before)] = first.items()
    assert len([k for k in before if k[0] == "dess"]) == DESS_SLOTS  # every slot, used or not
    assert len([k for k in before if k[0] == "ess_charge"]) == ESS_SLOTS
    assert before[("settings", "all")] == {
        "dess_mode": 1,
        "ess_mode": 1,
        "min_soc_pct": 20.0,
        "time_zone": "Europe/Amsterdam",
    }
    assert before[("ess_charge", "0")]["day"] == -8  # a disabled window stays visible
    assert _used(before) == [(w.start_s, w.soc_pct) for w in schedule.issued(day - 1)]

    t1, after = max(both.items())
    assert t1 > t0 and len(after) == len(before)  # the whole plan again, at one timestamp
    assert _used(after) == [(w.start_s, w.soc_pct) for w in schedule.issued(day)]
    removed = [k for k in before if k[0] == "dess" and before[k]["start_s"] and not after[k]["start_s"]]
    assert removed, "the slot the new plan no longer uses is in the snapshot, with Start 0"

    # the live Dynamic ESS state is a 1 Hz system field; the plan's settings are not also in the long tail
    [errors] = influx.query("SELECT count(dess_error_code), count(dess_active) FROM system")
    assert errors.rows()[0]["count"] > 0
    doubled = influx.query("SELECT count(value) FROM gx_topic WHERE path =~ /^\\/Settings\\/DynamicEss\\/Schedule/")
    assert doubled == []


def test_over_modbus_alone_slot_0_the_modes_and_the_live_state_land(
    influx_server: InfluxServer, influx: InfluxClient, tmp_path: Path
) -> None:
    """Without MQTT the GX's Modbus server gives the mode, slot 0 (5423-5430) and the live state (5400-5407)."""
    physics = BessPhysics(7, cells=4)
    day = next(d for d in range(20_400, 20_460) if physics.schedule.executed(d))
    window = physics.schedule.executed(day)[0]
    at_s = window.start_s + 120  # two minutes into a forced charge
    sim = GxSimulator(7, modbus_port=0, cells=4, clock=SimClock(at_s)).start()
    config = write_config(
        tmp_path / "c.toml", influx_server.url, modbus_port=sim.modbus_port, mqtt_port=None,
        buffer_dir=tmp_path / "buffer",
    )  # fmt: skip
    collector = CollectorProcess(config, tmp_path / "collector.log").start()
    try:
        snapshot = wait_until(lambda: _snapshots(influx), 40, "a gx_plan snapshot over Modbus")
        live = wait_until(
            lambda: influx.query("SELECT dess_active, dess_target_soc_pct, dess_charge_rate_w FROM system LIMIT 1"),
            10,
            "the dess_* fields over Modbus",
        )
    finally:
        code = collector.stop()
        sim.stop()
    assert code == 0, collector.log()[-3000:]
    [(_, points)] = snapshot.items()
    slot0 = points[("dess", "0")]
    first = physics.schedule.plan_at(at_s)[0]
    assert slot0["start_s"] == first.start_s and slot0["duration_s"] == first.duration_s
    assert slot0["soc_pct"] == round(first.soc_pct)  # Modbus 5427 has the legacy integer Soc
    assert slot0["strategy"] == 0
    assert points[("settings", "all")] == {"dess_mode": 1, "ess_mode": 1, "min_soc_pct": 20.0}
    assert [k for k in points if k[0] == "dess"] == [("dess", "0")]  # the other slots are MQTT only
    row = live[0].rows()[0]
    assert row["dess_active"] == 1 and row["dess_target_soc_pct"] == window.soc_pct
    assert row["dess_charge_rate_w"] > 0 and row["dess_charge_rate_w"] % 10 == 0  # 5403: units of 10 W
