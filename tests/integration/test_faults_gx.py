"""GX and broker faults end to end: the collector as a subprocess, the simulated GX in this process with its
fault knobs, real mosquitto and influxd. Every test asserts on what landed in InfluxDB, second by second,
plus the collector's log (JSON lines, counted per event) and, where it says more, its /metrics endpoint.

4. the MQTT broker restarts: cell rows (MQTT only) come back within 10 s, keepalives resume;
5. the GX freezes, or stops answering keepalives: values leave the rows within their TTL (the rows are still
   written, as stale), the MQTT client reconnects, and the values return when the GX does; one GX service
   hangs (heartbeat and register 830 go on): the device is reported suspect in collector_health;
6. a Modbus unit answers 0x0A and comes back: its rows go stale, the rest keeps flowing, a bounded log;
7. garbage from the GX (MQTT payloads of every kind, out-of-range registers): counted per kind, logged once
   per kind, never written as data, never a crash.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import urllib3
from paho.mqtt.enums import CallbackAPIVersion

from bess_common.influx import InfluxClient
from collector.gx.tables import registers
from collector.simulator.encoding import type_range
from collector.simulator.faults import CLAMPS, GARBAGE_KINDS, Clamp
from collector.simulator.gx import GxSimulator
from collector.simulator.recording import ModbusRequest, MqttMessage
from deploy.localservices import InfluxServer, MosquittoServer, free_port
from tests.integration.pipeline import SECOND_NS, CollectorProcess, whole_seconds, write_config
from tests.integration.test_collector_end_to_end import SHUNT, _matches_truth
from tests.integration.test_gx_quirks import DAY0_S, ShiftedClock, _find
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
CELLS = 4  # enough to prove per-cell behaviour; fewer cells keep the 2-core box responsive
BMS_UNIT = 225


# --- helpers -------------------------------------------------------------------------------------------------
def _now_s_ns() -> int:
    """The next whole second (ns): windows start on a grid second."""
    return (time.time_ns() // SECOND_NS + 1) * SECOND_NS


def _rows(influx: InfluxClient, query: str) -> list[dict[str, object]]:
    return [{**row, **s.tags} for s in influx.query(query) for row in s.rows()]


def _by_second(rows: list[dict[str, object]]) -> dict[int, list[dict[str, object]]]:
    out: dict[int, list[dict[str, object]]] = {}
    for row in rows:
        out.setdefault(int(str(row["time"])), []).append(row)
    return out


def _cells(influx: InfluxClient, start_ns: int, end_ns: int) -> dict[int, list[dict[str, object]]]:
    """Cell rows per second in [start, end)."""
    query = (
        f"SELECT voltage_v, stale_fields, age_s FROM cell WHERE time >= {start_ns} AND time < {end_ns} GROUP BY cell"
    )
    return _by_second(_rows(influx, query))


def _battery(influx: InfluxClient, device: str, start_ns: int, end_ns: int) -> dict[int, dict[str, object]]:
    """One battery row per second of a device in [start, end)."""
    query = f"SELECT * FROM battery WHERE device = '{device}' AND time >= {start_ns} AND time < {end_ns}"
    return {int(str(r["time"])): r for r in _rows(influx, query)}


def _has_voltage(influx: InfluxClient, device: str, since_ns: int) -> bool:
    """Some battery row of the device since then carries a voltage."""
    return any(r.get("voltage_v") is not None for r in _battery(influx, device, since_ns, time.time_ns()).values())


def _all_cells_fresh(rows: list[dict[str, object]]) -> bool:
    fresh = {r["cell"] for r in rows if r.get("voltage_v") is not None}
    return len(fresh) == CELLS


def _first_second(
    seconds: dict[int, list[dict[str, object]]], ok: Callable[[list[dict[str, object]]], bool]
) -> int | None:
    return next((t for t in sorted(seconds) if ok(seconds[t])), None)


def _log_lines(collector: CollectorProcess) -> list[dict[str, object]]:
    out = []
    for line in collector.log().splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _events(collector: CollectorProcess, since: str = "") -> Counter[str]:
    return Counter(str(e["event"]) for e in _log_lines(collector) if str(e.get("timestamp", "")) >= since)


def _metrics(port: int) -> dict[str, float]:
    text = urllib3.PoolManager().request("GET", f"http://127.0.0.1:{port}/metrics").data.decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _iso_now() -> str:
    """The collector's log timestamp format, for 'lines since now'."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


def _start(
    tmp_path: Path,
    influx_server: InfluxServer,
    sim: GxSimulator,
    *,
    mqtt_port: int | None,
    modbus: bool = True,
    metrics_port: int = 0,
    **collector: Any,
) -> CollectorProcess:
    config = write_config(
        tmp_path / "c.toml",
        influx_server.url,
        modbus_port=sim.modbus_port if modbus else None,
        mqtt_port=mqtt_port,
        buffer_dir=tmp_path / "buffer",
        portal_id=sim.portal_id,
        **collector,
    )
    config.write_text(config.read_text().replace("metrics_port = 0\n", f"metrics_port = {metrics_port}\n"))
    return CollectorProcess(config, tmp_path / "collector.log").start()


@pytest.fixture
def sim(mosquitto: MosquittoServer) -> Iterator[GxSimulator]:
    gx = GxSimulator(seed=11, modbus_port=0, mqtt_port=mosquitto.port, cells=CELLS).start()
    yield gx
    gx.stop()


def _keepalives_since(sim: GxSimulator, mono_s: float) -> list[bytes]:
    topic = f"R/{sim.portal_id}/keepalive"
    return [m.payload for m in sim.received if isinstance(m, MqttMessage) and m.topic == topic and m.mono_s > mono_s]


def _wait_cells_fresh(influx: InfluxClient, since_ns: int, timeout_s: float, what: str) -> None:
    wait_until(
        lambda: _first_second(_cells(influx, since_ns, time.time_ns()), _all_cells_fresh) is not None,
        timeout_s,
        what,
    )


def _stalled_and_reconnected(metrics_port: int) -> dict[str, float] | None:
    """The metrics once the MQTT client has stalled and reconnected while Modbus is disconnected."""
    m = _metrics(metrics_port)
    done = (
        m.get('bess_collector_source_events_total{kind="stalls",source="mqtt"}', 0) >= 1
        and m.get('bess_collector_source_events_total{kind="connections",source="mqtt"}', 0) >= 2
        and m.get('bess_collector_source_state{device="shunt",source="modbus",state="connected"}', 1) == 0
    )
    return m if done else None


def _stale_cell_seconds(influx: InfluxClient, since_ns: int) -> int:
    """Seconds from since_ns on whose cell rows were all written without a voltage (stale)."""
    cells = _cells(influx, since_ns, time.time_ns())
    return sum(1 for rows in cells.values() if len(rows) == CELLS and all(r["voltage_v"] is None for r in rows))


def _stale_battery_seconds(influx: InfluxClient, device: str, since_ns: int) -> int:
    """Seconds from since_ns whose row of the device was written without a voltage (stale)."""
    rows = _battery(influx, device, since_ns, time.time_ns())
    return sum(1 for row in rows.values() if row.get("voltage_v") is None)


def _gx_with_its_broker(mosquitto: MosquittoServer) -> GxSimulator:
    """On a real GX the broker and the publisher (dbus-flashmq) are one process: they come back together,
    so the collector can never reconnect before the GX listens. The simulator is a separate MQTT client
    that retries every 1-2 s; if the collector got in first, its full keepalive would go to nobody and the
    cells would wait for the 15 s re-ask, a race only the simulation has. Retry every 0.2 s instead."""
    return GxSimulator(seed=11, modbus_port=0, mqtt_port=mosquitto.port, cells=CELLS, reconnect_delay_s=0.2)


# --- fault 4: the broker restarts -------------------------------------------------------------------------------
def test_when_broker_restarts_then_cell_rows_resume_within_10_s_and_keepalives_resume(
    influx_server: InfluxServer, influx: InfluxClient, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    ttl_cell_s = 3.0
    sim = _gx_with_its_broker(mosquitto).start()
    collector = _start(
        tmp_path, influx_server, sim, mqtt_port=mosquitto.port, ttl_cell_s=ttl_cell_s, keepalive_interval_s=2.0
    )
    try:
        _wait_cells_fresh(influx, time.time_ns(), 40, "cell rows before the restart")
        down_ns = _now_s_ns()
        time.sleep((down_ns - time.time_ns()) / 1e9)
        mosquitto.stop()
        # past the cells' TTL they must drop out of the rows: wait until 3 seconds were written that way
        stale_from = down_ns + round((ttl_cell_s + 1.5) * SECOND_NS)
        wait_until(lambda: _stale_cell_seconds(influx, stale_from) >= 3, ttl_cell_s + 30, "stale cell rows")
        mosquitto.start()
        up_ns, up_mono = time.time_ns(), time.monotonic()
        _wait_cells_fresh(influx, up_ns, 15, "cell rows after the restart")
        wait_until(lambda: any(b"suppress-republish" in p for p in _keepalives_since(sim, up_mono)), 10, "keepalives")
        end_ns = time.time_ns()
        assert collector.proc is not None and collector.proc.poll() is None, "the collector must survive"
    finally:
        code = collector.stop()
        sim.stop()
    assert code == 0, collector.log()[-3000:]
    seconds = _cells(influx, down_ns, end_ns)
    resumed = _first_second({t: r for t, r in seconds.items() if t >= up_ns}, _all_cells_fresh)
    assert resumed is not None and resumed - up_ns < 10 * SECOND_NS, (resumed, up_ns)
    # while the broker was gone (past the TTL) each cell is still written every second, as stale
    outage = whole_seconds(down_ns + round((ttl_cell_s + 1.5) * SECOND_NS), up_ns - SECOND_NS)
    assert len(outage) >= 2
    for t in outage:
        rows = seconds.get(t, [])
        assert len(rows) == CELLS, f"second {t}: {len(rows)} cell rows"
        assert all(r["voltage_v"] is None and int(str(r["stale_fields"])) > 0 for r in rows), rows
    # the shunt, also read over Modbus, never had a gap
    shunt = _battery(influx, "shunt", down_ns, end_ns)
    missing = [t for t in whole_seconds(down_ns, end_ns - 2 * SECOND_NS) if shunt.get(t, {}).get("voltage_v") is None]
    assert len(missing) <= 1, f"shunt seconds without a voltage: {missing}"
    assert "mqtt_disconnected" in _events(collector)
    full = [p for p in _keepalives_since(sim, up_mono) if b"full-publish-completed-echo" in p]
    assert full, "a fresh connection asks for a full publish"


# --- fault 5: the GX freezes, one of its services hangs, or it stops answering keepalives ----------------------
def test_when_gx_freezes_then_values_go_stale_within_ttl_client_reconnects_and_all_recovers(
    influx_server: InfluxServer, influx: InfluxClient, mosquitto: MosquittoServer, sim: GxSimulator, tmp_path: Path
) -> None:
    """The whole GX hangs: no MQTT at all (no heartbeat) and Modbus requests go unanswered."""
    ttl_s = 4.0
    metrics_port = free_port()
    collector = _start(
        tmp_path, influx_server, sim, mqtt_port=mosquitto.port, metrics_port=metrics_port,
        ttl_shunt_s=ttl_s, ttl_system_s=ttl_s, ttl_cell_s=ttl_s, keepalive_interval_s=5.0,
    )  # fmt: skip
    try:
        _wait_cells_fresh(influx, time.time_ns(), 40, "cell rows before the freeze")
        freeze_ns = _now_s_ns()
        time.sleep((freeze_ns - time.time_ns()) / 1e9)
        sim.faults.freeze(True)
        # the MQTT client stalls (stall_timeout_s) and reconnects; Modbus, unanswered, disconnects
        during = wait_until(lambda: _stalled_and_reconnected(metrics_port), 45, "an MQTT stall and reconnect")
        stale_from = freeze_ns + round((ttl_s + 3) * SECOND_NS)
        wait_until(lambda: _stale_battery_seconds(influx, "shunt", stale_from) >= 6, 30, "stale shunt rows")
        thaw_ns = time.time_ns()
        sim.faults.freeze(False)
        _wait_cells_fresh(influx, thaw_ns, 20, "cell rows after the GX recovered")
        wait_until(lambda: _has_voltage(influx, "shunt", thaw_ns), 15, "shunt rows after the GX recovered")
        wait_until(lambda: _events(collector)["modbus_connected"] >= 2, 30, "Modbus to reconnect after the freeze")
        end_ns = time.time_ns()
    finally:
        code = collector.stop()
    assert code == 0, collector.log()[-3000:]
    assert during['bess_collector_source_events_total{kind="stalls",source="mqtt"}'] >= 1
    assert during['bess_collector_source_events_total{kind="connections",source="mqtt"}'] >= 2, "it reconnected"
    assert during['bess_collector_source_state{device="shunt",source="modbus",state="connected"}'] == 0
    # within TTL + a few seconds every value is gone from the rows, and the rows are still written (as stale)
    frozen = whole_seconds(freeze_ns + round((ttl_s + 3) * SECOND_NS), thaw_ns)
    assert len(frozen) >= 5
    cells = _cells(influx, freeze_ns, end_ns)
    shunt = _battery(influx, "shunt", freeze_ns, end_ns)
    for t in frozen:
        assert len(cells.get(t, [])) == CELLS and all(r["voltage_v"] is None for r in cells[t]), (t, cells.get(t))
        row = shunt.get(t)
        assert row is not None, f"no shunt row at {t}: stale rows must still be written"
        assert row.get("voltage_v") is None and int(str(row["stale_fields"])) >= len(SHUNT), row
    # the values were not dropped too early: right after freezing they were still there (within TTL)
    assert shunt[freeze_ns + SECOND_NS].get("voltage_v") is not None
    events = _events(collector)
    assert events["mqtt_stalled"] == 1 and events["mqtt_recovered"] == 1, events
    assert events["modbus_disconnected"] >= 1 and events["modbus_connected"] >= 2, events


def _health(influx: InfluxClient, start_ns: int, end_ns: int) -> list[dict[str, object]]:
    return _rows(influx, f"SELECT * FROM collector_health WHERE time >= {start_ns} AND time < {end_ns}")


def test_when_the_shunt_service_hangs_then_heartbeat_and_clock_go_on_and_the_shunt_is_reported_suspect(
    influx_server: InfluxServer, influx: InfluxClient, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    """What a real GX does when one D-Bus service hangs: the MQTT heartbeat and register 830 keep ticking,
    that service's values stop changing. No TTL can catch it (the values are confirmed every heartbeat and
    re-read every second); the collector reports the device suspect once its fast-moving values have not
    changed for collector.suspect_after_s, and never holds them silently."""
    clock = ShiftedClock(DAY0_S)
    sim = GxSimulator(seed=3, modbus_port=0, mqtt_port=mosquitto.port, cells=CELLS, clock=clock, heartbeat_s=1.0)
    clock.go(_find(sim, lambda v: abs(float(str(v[("shunt", "/Dc/0/Current")]))) > 10, 120))  # a busy hour
    sim.start()
    suspect_after_s = 6.0
    collector = _start(
        tmp_path, influx_server, sim, mqtt_port=mosquitto.port, health_interval_s=1.0,
        suspect_after_s=suspect_after_s,
    )  # fmt: skip
    try:
        _wait_cells_fresh(influx, time.time_ns(), 40, "cell rows before the hang")
        time.sleep(suspect_after_s)
        hang_ns = _now_s_ns()
        time.sleep((hang_ns - time.time_ns()) / 1e9)
        sim.faults.hang_service("shunt")
        hang_mono = time.monotonic()
        wait_until(
            lambda: any(r.get("shunt_suspect") == 1 for r in _health(influx, hang_ns, time.time_ns())),
            suspect_after_s + 10,
            "a health row marking the shunt suspect",
        )
        suspect_delay_s = time.monotonic() - hang_mono
        time.sleep(3.0)
        heal_ns = _now_s_ns()
        time.sleep((heal_ns - time.time_ns()) / 1e9)
        sim.faults.hang_service("shunt", on=False)
        wait_until(
            lambda: any(r.get("shunt_suspect") == 0 for r in _health(influx, heal_ns, time.time_ns())),
            10,
            "the shunt moving again",
        )
        end_ns = time.time_ns()
        received = sim.received
    finally:
        code = collector.stop()
        sim.stop()
    assert code == 0, collector.log()[-3000:]
    assert suspect_delay_s >= suspect_after_s - 1.5, f"suspect after {suspect_delay_s:.1f} s: too early"
    before = _health(influx, hang_ns - 3 * SECOND_NS, hang_ns)
    assert before and all(r["shunt_suspect"] == 0 for r in before), before
    hung = _health(influx, hang_ns, heal_ns)
    late = [r for r in hung if int(str(r["time"])) >= hang_ns + round((suspect_after_s + 2) * SECOND_NS)]
    assert late and all(r["shunt_suspect"] == 1 and r["suspect_devices"] == 1 for r in late), late
    assert all(r["bms_suspect"] == 0 and r["system_suspect"] == 0 for r in hung), "the other services moved on"
    # the heartbeat went on: MQTT never stalled, and the shunt's held values kept landing (not silently: the
    # health rows of those seconds say suspect)
    events = _events(collector)
    assert events["mqtt_stalled"] == 0, events
    assert events["device_suspect"] == 1 and events["device_moving"] == 1, events
    shunt = _battery(influx, "shunt", hang_ns + 2 * SECOND_NS, heal_ns)
    volts = {row.get("voltage_v") for row in shunt.values()}
    assert len(shunt) >= suspect_after_s and None not in volts and len(volts) == 1, volts
    # and register 830 went on ticking: the collector kept reading the system block (it holds 830)
    reads = [r for r in received if isinstance(r, ModbusRequest) and r.unit == 100 and r.address == 826]
    assert len(reads) >= suspect_after_s, "the system block (with 830) was read every second"
    assert _has_voltage(influx, "shunt", heal_ns) and end_ns > heal_ns


def test_when_gx_stops_answering_keepalives_then_values_go_stale_and_recover_when_it_answers(
    influx_server: InfluxServer, influx: InfluxClient, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    # a short keepalive timeout on the GX side so that it stops publishing within seconds, not a minute
    sim = GxSimulator(seed=5, modbus_port=None, mqtt_port=mosquitto.port, cells=CELLS, keepalive_timeout_s=4.0)
    sim.start()
    ttl_s = 4.0
    collector = _start(
        tmp_path, influx_server, sim, mqtt_port=mosquitto.port, modbus=False, ttl_cell_s=ttl_s, ttl_shunt_s=ttl_s,
        ttl_system_s=ttl_s, keepalive_interval_s=1.0,
    )  # fmt: skip
    try:
        _wait_cells_fresh(influx, time.time_ns(), 40, "cell rows before the fault")
        deaf_ns = _now_s_ns()
        time.sleep((deaf_ns - time.time_ns()) / 1e9)
        sim.faults.ignore_keepalives(True)
        # the GX falls silent after its keepalive timeout (4 s), the values go stale a TTL later, and the
        # client stalls stall_timeout_s after the silence
        silent_from = deaf_ns + round((4.0 + ttl_s + 2) * SECOND_NS)
        wait_until(lambda: _events(collector)["mqtt_stalled"] >= 1, 45, "the MQTT client to stall")
        wait_until(lambda: _stale_cell_seconds(influx, silent_from) >= 5, 30, "stale cell rows while silent")
        healed_ns, healed_mono = time.time_ns(), time.monotonic()
        sim.faults.ignore_keepalives(False)
        _wait_cells_fresh(influx, healed_ns, 25, "cell rows after the GX answers keepalives again")
        end_ns = time.time_ns()
    finally:
        code = collector.stop()
        sim.stop()
    assert code == 0, collector.log()[-3000:]
    assert _keepalives_since(sim, healed_mono), "the client kept sending keepalives"
    silent = whole_seconds(deaf_ns + round((4.0 + ttl_s + 2) * SECOND_NS), healed_ns)
    assert len(silent) >= 4
    cells = _cells(influx, deaf_ns, end_ns)
    for t in silent:
        assert len(cells.get(t, [])) == CELLS and all(r["voltage_v"] is None for r in cells[t]), (t, cells.get(t))
    events = _events(collector)
    assert events["mqtt_stalled"] >= 1 and events["mqtt_recovered"] >= 1, events


# --- fault 6: a Modbus unit disappears (0x0A) and comes back ---------------------------------------------------
def _bms_probes(sim: GxSimulator, from_mono: float, to_mono: float) -> list[ModbusRequest]:
    """The Modbus requests to the BMS unit the simulator received in [from, to)."""
    return [
        r for r in sim.received
        if isinstance(r, ModbusRequest) and r.unit == BMS_UNIT and from_mono <= r.mono_s < to_mono
    ]  # fmt: skip


def test_when_modbus_unit_answers_0x0a_then_marked_absent_rest_flows_bounded_log_and_it_recovers(
    influx_server: InfluxServer, influx: InfluxClient, tmp_path: Path
) -> None:
    sim = GxSimulator(seed=9, modbus_port=0, mqtt_port=None, cells=CELLS).start()
    collector = _start(tmp_path, influx_server, sim, mqtt_port=None)  # Modbus only: its rows come from this unit
    try:
        wait_until(
            lambda: _has_voltage(influx, "bms", 0),
            40,
            "BMS rows over Modbus",
        )
        gone_ns = _now_s_ns()
        time.sleep((gone_ns - time.time_ns()) / 1e9)
        gone_mono, gone_iso = time.monotonic(), _iso_now()
        sim.faults.modbus_exception(BMS_UNIT, 0x0A)
        # the unit is marked absent at the first 0x0A, then re-probed once per quiet period (10 s)
        wait_until(lambda: len(_bms_probes(sim, gone_mono, time.monotonic())) >= 2, 40, "a re-probe of the unit")
        back_ns, back_mono = time.time_ns(), time.monotonic()
        sim.faults.modbus_exception(BMS_UNIT, None)
        wait_until(
            lambda: _has_voltage(influx, "bms", back_ns),
            14,
            "BMS rows after the unit came back",
        )  # fmt: skip
        end_ns = time.time_ns()
        assert collector.proc is not None and collector.proc.poll() is None, "no crash"
        during_log = _events(collector, since=gone_iso)
    finally:
        code = collector.stop()
        sim.stop()
    assert code == 0, collector.log()[-3000:]
    bms = _battery(influx, "bms", gone_ns, end_ns)
    shunt = _battery(influx, "shunt", gone_ns, end_ns)
    absent = whole_seconds(gone_ns + 2 * SECOND_NS, back_ns)
    for t in absent:
        row = bms.get(t)
        assert row is not None, f"no BMS row at {t}: an absent device's row is written as stale"
        assert row.get("voltage_v") is None and int(str(row["stale_fields"])) > 0, row
    # the other unit (system + shunt on 100) never noticed
    steady = whole_seconds(gone_ns, end_ns - 2 * SECOND_NS)
    assert [t for t in steady if shunt.get(t, {}).get("voltage_v") is None] == []
    # no flood: one line when it went, one when it came back, nothing per poll
    assert during_log["modbus_unit_absent"] == 1 and during_log["modbus_unit_recovered"] == 1, during_log
    assert sum(during_log.values()) <= 4, during_log
    # and the GX was not hammered: an absent unit is re-probed every 10 s, not every second
    probes = _bms_probes(sim, gone_mono, back_mono)
    assert 2 <= len(probes) <= 4, len(probes)
    assert all(r.exception == 0x0A for r in probes)


# --- fault 7: garbage from the GX -------------------------------------------------------------------------------
def _publish_raw(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish as the GX would (same broker), for garbage the simulator's burst cannot deliver."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="garbage-gx")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


MQTT_KINDS = ("non_json", "wrong_type", "no_value", "nan", "oversized", "unknown_topic")


def test_when_gx_sends_mqtt_garbage_then_each_kind_counted_logged_once_never_written(
    influx_server: InfluxServer, influx: InfluxClient, mosquitto: MosquittoServer, sim: GxSimulator, tmp_path: Path
) -> None:
    metrics_port = free_port()
    collector = _start(tmp_path, influx_server, sim, mqtt_port=mosquitto.port, modbus=False, metrics_port=metrics_port)
    portal = sim.portal_id
    try:
        _wait_cells_fresh(influx, time.time_ns(), 40, "cell rows before the garbage")
        start_ns = time.time_ns()
        for _burst in range(2):  # twice: the second burst is counted but not logged again
            for sim_kind in GARBAGE_KINDS:
                sim.faults.send_garbage(sim_kind)
            # a topic inside our subscriptions that is not N/<id>/<service>/<instance>/<path>
            _publish_raw(mosquitto.port, [(f"N/{portal}/battery/0", b'{"value": 1}')])
            time.sleep(1.5)
        _wait_cells_fresh(influx, time.time_ns(), 15, "cell rows after the garbage")
        time.sleep(2.0)
        metrics = _metrics(metrics_port)
        end_ns = time.time_ns()
        assert collector.proc is not None and collector.proc.poll() is None, "never a crash"
    finally:
        code = collector.stop()
    assert code == 0, collector.log()[-3000:]
    for kind in MQTT_KINDS:
        assert metrics.get(f'bess_collector_source_errors_total{{kind="garbage_{kind}",source="mqtt"}}', 0) >= 2, kind
    assert metrics.get('bess_collector_source_errors_total{kind="errors_internal",source="mqtt"}', 0) == 0
    garbage_lines = Counter(str(e.get("kind")) for e in _log_lines(collector) if e["event"] == "mqtt_garbage")
    assert garbage_lines == Counter({kind: 1 for kind in MQTT_KINDS}), garbage_lines
    # never written as data: every shunt value in the window is the GX's truth (MQTT is the only source here)
    rows = _battery(influx, "shunt", start_ns, end_ns)
    assert len(rows) >= (end_ns - start_ns) // SECOND_NS - 2
    for t, row in rows.items():
        for name, (path, _tol) in SHUNT.items():
            if row.get(name) is None:
                continue
            value = float(str(row[name]))
            age_s = float(str(row["age_s"]))
            assert _matches_truth(sim, "shunt", path, t // SECOND_NS, value=value, age_s=age_s, tol=1e-6), (
                name, t, value,
            )  # fmt: skip
    # (gx_topic, the long tail, stores text by design: the typed tables must stay numeric)
    kinds = {
        k
        for s in influx.query("SHOW FIELD KEYS FROM battery, cell, system")
        for k in (r["fieldType"] for r in s.rows())
    }
    assert kinds <= {"float", "integer"}, f"a non-numeric field landed: {kinds}"


def _clamped_values() -> set[float]:
    """Every value a register of the map would decode to at either overflow clamp (MAX, MAX-1, and MIN for a
    signed type; an unsigned type's MIN is 0, a real reading)."""
    out: set[float] = set()
    for reg in registers():
        if reg.type in ("reserved", "string"):
            continue
        lo, hi = type_range(reg.type)
        out.update(round(raw / reg.scale, 6) for raw in (hi, hi - 1, lo) if raw)
    return out


@pytest.mark.parametrize("clamp", CLAMPS)  # MAX-1: dbus_modbustcp v1.0.96 on; MAX: v1.0.85-v1.0.95
def test_when_modbus_registers_out_of_range_then_counted_logged_once_never_written(
    influx_server: InfluxServer, influx: InfluxClient, tmp_path: Path, clamp: Clamp
) -> None:
    sim = GxSimulator(seed=13, modbus_port=0, mqtt_port=None, cells=CELLS).start()
    metrics_port = free_port()
    collector = _start(tmp_path, influx_server, sim, mqtt_port=None, metrics_port=metrics_port, ttl_shunt_s=3.0)
    try:
        wait_until(lambda: bool(_battery(influx, "shunt", 0, time.time_ns())), 40, "shunt rows over Modbus")
        bad_ns = _now_s_ns()
        time.sleep((bad_ns - time.time_ns()) / 1e9)
        sim.faults.modbus_out_of_range(True, clamp=clamp)
        time.sleep(6.0)
        good_ns = time.time_ns()
        sim.faults.modbus_out_of_range(False)
        wait_until(
            lambda: _has_voltage(influx, "shunt", good_ns),
            10,
            "shunt values after the registers came back",
        )  # fmt: skip
        metrics = _metrics(metrics_port)
        end_ns = time.time_ns()
        assert collector.proc is not None and collector.proc.poll() is None, "never a crash"
    finally:
        code = collector.stop()
        sim.stop()
    assert code == 0, collector.log()[-3000:]
    assert metrics['bess_collector_source_errors_total{kind="garbage_out_of_range",source="modbus"}'] >= 5
    lines = [e for e in _log_lines(collector) if e["event"] == "modbus_garbage"]
    assert [e["kind"] for e in lines] == ["out_of_range"], lines
    shunt = _battery(influx, "shunt", bad_ns, end_ns)
    for t, row in shunt.items():
        for name, (path, tol) in SHUNT.items():
            if row.get(name) is None:
                continue
            value = float(str(row[name]))
            age_s = float(str(row["age_s"]))
            assert _matches_truth(sim, "shunt", path, t // SECOND_NS, value=value, age_s=age_s, tol=tol), (
                name, t, value,
            )  # fmt: skip
    # once the held values passed their TTL, the out-of-range seconds carry no shunt value at all
    late = whole_seconds(bad_ns + 5 * SECOND_NS, good_ns)
    assert late and all(shunt[t].get("voltage_v") is None for t in late), [shunt.get(t) for t in late]
    clamps = _clamped_values()
    landed = [
        (k, v)
        for query in ("SELECT * FROM system", "SELECT * FROM battery")
        for r in _rows(influx, f"{query} WHERE time >= {bad_ns} AND time < {good_ns}")
        for k, v in r.items()
        if k not in ("time", "age_s") and isinstance(v, int | float) and round(float(v), 6) in clamps
    ]
    assert landed == [], "a register at its overflow clamp landed as a value"
