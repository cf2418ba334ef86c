"""Faults 2, 3, 8, 9 against a real influxd and the collector as a subprocess; asserted from InfluxDB."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bess_common.influx import InfluxClient
from collector.buffer import DiskBuffer
from collector.simulator.gx import GxSimulator
from deploy.localservices import InfluxServer
from tests.conftest import run_cli
from tests.integration.pipeline import (
    SECOND_NS,
    CollectorProcess,
    first_shunt_second,
    health_rows,
    log_events,
    shunt_seconds,
    times_of,
    whole_seconds,
    write_config,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
MakeCollector = Callable[..., CollectorProcess]


@pytest.fixture
def gx() -> Iterator[GxSimulator]:
    sim = GxSimulator(seed=5, modbus_port=0, mqtt_port=None).start()
    yield sim
    sim.stop()


@pytest.fixture
def collector_factory(tmp_path: Path, influx_server: InfluxServer, gx: GxSimulator) -> Iterator[MakeCollector]:
    made: list[CollectorProcess] = []

    def make(**collector: Any) -> CollectorProcess:
        config = write_config(
            tmp_path / "c.toml",
            influx_server.url,
            modbus_port=gx.modbus_port,
            mqtt_port=None,
            buffer_dir=tmp_path / "buffer",
            **collector,
        )
        proc = CollectorProcess(config, tmp_path / "collector.log")
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.kill_quietly()


def _started(influx: InfluxClient, collector: CollectorProcess) -> int:
    since = time.time_ns()
    collector.start()
    wait_until(lambda: first_shunt_second(influx, since) is not None, 30, "the first shunt row")
    first = first_shunt_second(influx, since)
    assert first is not None
    return first


def test_when_a_line_is_rejected_then_dead_lettered_rest_flows_and_replayable(
    influx: InfluxClient, collector_factory: MakeCollector, tmp_path: Path
) -> None:
    collector = collector_factory()
    first = _started(influx, collector)
    probe_ns = first - 3600 * SECOND_NS
    influx.write([f"probe,site=t v=1i {probe_ns}"])  # v is an integer in this shard from now on
    bad = f'probe,site=t v="text" {probe_ns + SECOND_NS}'
    buffer = DiskBuffer(tmp_path / "buffer", max_bytes=1024 * 1024 * 1024)
    buffer.append([bad])  # arrives in the collector's buffer like any other line
    buffer.close()
    dead_file = tmp_path / "buffer" / "dead_letters.jsonl"
    wait_until(lambda: dead_file.exists() and dead_file.stat().st_size > 0, 20, "the dead letter")
    time.sleep(3)
    listed = run_cli("collector", "dead-letters", "list", "--config", str(collector.config))
    assert listed.returncode == 0, listed.stderr
    assert "1 entries, 1 lines" in listed.stdout
    assert "field type conflict" in listed.stdout
    entry = json.loads(dead_file.read_text().splitlines()[0])
    assert entry["lines"] == [bad]
    assert entry["status"] == 400

    # the same line again: rejected again, so it is set aside again
    replay = run_cli("collector", "dead-letters", "replay", "--config", str(collector.config))
    assert replay.returncode == 0, replay.stderr
    wait_until(
        lambda: (
            json.loads(dead_file.read_text().splitlines()[0])["time_ns"] != entry["time_ns"]
            if dead_file.read_text().strip()
            else False
        ),
        20,
        "the line rejected again",
    )
    # the operator fixes the cause; the replay now lands
    influx.query('DROP MEASUREMENT "probe"')
    replay = run_cli("collector", "dead-letters", "replay", "--config", str(collector.config))
    assert "replayed 1 entries (1 lines)" in replay.stdout
    wait_until(lambda: bool(influx.query("SELECT v FROM probe")), 20, "the replayed line in InfluxDB")
    time.sleep(2)
    end = time.time_ns() // SECOND_NS * SECOND_NS
    assert collector.stop() == 0
    assert [row["v"] for s in influx.query("SELECT v FROM probe") for row in s.rows()] == ["text"]
    assert dead_file.read_text().strip() == ""
    landed = shunt_seconds(influx, first, end)
    assert landed == whole_seconds(first, end), "the rest kept flowing: no second missing"
    rejected = max(int(row.get("lines_rejected") or 0) for row in health_rows(influx, first))
    assert rejected >= 1


def test_when_killed_while_influx_down_then_buffered_seconds_survive_and_gap_is_downtime_only(
    influx_server: InfluxServer, influx: InfluxClient, collector_factory: MakeCollector
) -> None:
    collector = collector_factory()
    first = _started(influx, collector)
    time.sleep(2)
    influx_server.stop()
    time.sleep(5)  # these seconds exist only in the collector's buffer
    kill_ns = time.time_ns()
    collector.stop(signal.SIGKILL)
    time.sleep(3)
    influx_server.start()
    restart_ns = time.time_ns()
    collector.start()
    wait_until(lambda: len(shunt_seconds(influx, restart_ns, time.time_ns())) >= 3, 30, "rows after the restart")
    end = time.time_ns() // SECOND_NS * SECOND_NS
    assert collector.stop() == 0
    landed = shunt_seconds(influx, first, end)
    before_kill = whole_seconds(first, kill_ns - SECOND_NS)
    assert set(before_kill) <= set(landed), "a second the buffer had accepted was lost"
    resumed = min(t for t in landed if t >= restart_ns)
    missing = sorted(set(whole_seconds(first, landed[-1])) - set(landed))
    assert all(kill_ns - SECOND_NS <= t < resumed for t in missing), "the only gap is while it was down"
    assert len(missing) <= (resumed - kill_ns) // SECOND_NS + 1


def test_when_sigterm_then_flushed_exit_0_and_final_second_written(
    influx: InfluxClient, collector_factory: MakeCollector
) -> None:
    collector = collector_factory()
    first = _started(influx, collector)
    time.sleep(4)
    stop_ns = time.time_ns()
    started = time.monotonic()
    assert collector.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    landed = shunt_seconds(influx, first, stop_ns + SECOND_NS)
    assert landed == whole_seconds(first, stop_ns // SECOND_NS * SECOND_NS + 1)
    assert "collector_stopped" in log_events(collector.log())


def test_when_sigterm_while_influx_down_then_exit_0_in_deadline_and_rest_kept_for_next_start(
    influx_server: InfluxServer, influx: InfluxClient, collector_factory: MakeCollector, tmp_path: Path
) -> None:
    collector = collector_factory(shutdown_flush_timeout_s=2.0)
    first = _started(influx, collector)
    influx_server.stop()
    time.sleep(4)
    started = time.monotonic()
    sigterm_ns = time.time_ns()
    assert collector.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 2.0 + 5.0
    left = DiskBuffer(tmp_path / "buffer", max_bytes=1024 * 1024 * 1024)
    assert left.depth() > 0
    left.close()
    influx_server.start()
    restart_ns = time.time_ns()
    collector.start()
    wait_until(lambda: len(shunt_seconds(influx, restart_ns, time.time_ns())) >= 2, 30, "rows after the restart")
    assert collector.stop() == 0
    last = sigterm_ns // SECOND_NS * SECOND_NS  # the final snapshot covers the second of the SIGTERM
    landed = shunt_seconds(influx, first, last + 1)
    assert landed == whole_seconds(first, last + 1), "the unflushed seconds landed after the restart"


def test_when_buffer_limit_hit_in_outage_then_oldest_dropped_counted_logged_disk_bounded(
    influx_server: InfluxServer, influx: InfluxClient, collector_factory: MakeCollector, tmp_path: Path
) -> None:
    limit = 256 * 1024
    collector = collector_factory(buffer_max_mb=limit / 1024 / 1024, health_interval_s=1.0)
    first = _started(influx, collector)
    influx_server.stop()
    time.sleep(2)
    # A long outage, compressed: old lines fill the buffer up to its limit (drop-oldest applies here too).
    filler = DiskBuffer(tmp_path / "buffer", max_bytes=limit)
    base = first - 86400 * SECOND_NS
    for chunk in range(40):
        filler.append(
            [f'filler,site=t n={chunk * 100 + i}i,pad="{"x" * 150}" {base + chunk * 100 + i}' for i in range(100)]
        )
    filler.close()
    filled_ns = time.time_ns()
    peak = 0
    for _ in range(24):  # the collector keeps appending into a full buffer for ~12 s
        peak = max(peak, sum(p.stat().st_size for p in (tmp_path / "buffer").glob("buffer.db*")))
        time.sleep(0.5)
    assert peak <= limit, f"buffer files grew to {peak} bytes, limit {limit}"
    influx_server.start()
    wait_until(
        lambda: any(
            int(r.get("lines_dropped") or 0) > 0 and int(r.get("buffer_depth") or 0) < 50
            for r in health_rows(influx, filled_ns)
        ),
        40,
        "a health row after the backlog drained",
    )
    end = time.time_ns() // SECOND_NS * SECOND_NS
    assert collector.stop() == 0
    assert "buffer_full_dropping_oldest" in log_events(collector.log())
    numbers = times_of(influx, "SELECT n FROM filler")
    assert 0 < len(numbers) < 4000, "the oldest filler lines were dropped, the newer kept"
    assert numbers[-1] == base + 3999
    after = shunt_seconds(influx, filled_ns + SECOND_NS, end)
    assert after == whole_seconds(filled_ns + SECOND_NS, end), "the newest data survives the drop policy"
