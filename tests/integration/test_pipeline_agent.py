"""The agent in-process: the 1 Hz ticker's rules (with an injected clock) and the health metrics
(/metrics and collector_health in a real influxd). Sources are small fakes here; the real ones run in
test_collector_end_to_end.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import urllib3

from bess_common.influx import InfluxClient
from collector.agent import Agent
from collector.config import Settings
from collector.observation import Observation, ObservationSink, SourceState
from deploy.localservices import InfluxServer, free_port
from tests.integration.pipeline import SECOND_NS
from tests.waiting import wait_until

T0 = 1_800_000_000 * SECOND_NS


class FakeSource:
    """Hands the grid whatever the test pushes."""

    name = "mqtt"

    def __init__(self) -> None:
        self.sink: ObservationSink | None = None
        self.stopped = False
        self.loop_age = 0.0  # a test sets it high to play a hung source loop

    def start(self, sink: ObservationSink) -> None:
        self.sink = sink

    def stop(self, timeout_s: float = 5.0) -> None:
        self.stopped = True

    def state(self) -> dict[str, SourceState]:
        return {"shunt": "connected", "bms": "absent"}

    def counters(self) -> dict[str, int]:
        return {"messages": 7, "garbage_json": 2}

    def loop_age_s(self) -> float:
        return self.loop_age

    def push(self, voltage_v: float, mono_s: float) -> None:
        assert self.sink is not None
        self.sink([Observation("shunt", "/Dc/0/Voltage", voltage_v, "mqtt", mono_s)])


class Clock:
    def __init__(self) -> None:
        self.wall_ns = T0
        self.mono_s = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall_ns += round(seconds * 1e9)
        self.mono_s += seconds


def _settings(tmp_path: Path, influx_url: str = "http://127.0.0.1:9", **collector: object) -> Settings:
    return Settings(
        site="t",
        influx={"url": influx_url, "timeout_s": 2.0},
        collector={
            "buffer_dir": tmp_path / "buffer",
            "metrics_port": 0,
            "health_interval_s": 10.0,
            "flush_interval_s": 0.2,
            **collector,
        },
    )


def _timestamps(agent: Agent, measurement: str) -> list[int]:
    lines = agent.buffer.peek(10_000).lines
    return [int(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(measurement + ",")]


@pytest.fixture
def clocked(tmp_path: Path) -> tuple[Agent, FakeSource, Clock]:
    clock = Clock()
    source = FakeSource()
    settings = _settings(tmp_path)
    agent = Agent(
        settings, InfluxClient(settings.influx), [source], wall_ns=lambda: clock.wall_ns, mono_s=lambda: clock.mono_s
    )
    source.start(agent._sink)  # what agent.start() does, without the threads
    return agent, source, clock


def test_when_ticks_come_early_late_or_twice_then_each_second_emitted_once(
    clocked: tuple[Agent, FakeSource, Clock],
) -> None:
    agent, source, clock = clocked
    clock.advance(0.2)
    source.push(52.0, clock.mono_s)
    assert agent.tick_once() is True  # second T0
    clock.advance(0.7)
    assert agent.tick_once() is False  # woke early: still second T0
    clock.advance(0.1)
    source.push(52.1, clock.mono_s)
    assert agent.tick_once() is True  # T0 + 1
    clock.advance(3.05)  # the process stalled: T0+2 and T0+3 are skipped, not back-filled
    assert agent.tick_once() is True  # T0 + 4
    assert _timestamps(agent, "battery") == [T0, T0 + SECOND_NS, T0 + 4 * SECOND_NS]
    snap = agent.snapshot()
    assert (snap.ticks, snap.ticks_missed) == (3, 2)
    agent.buffer.close()


def test_when_wall_clock_steps_back_then_logged_and_ticking_resumes(
    clocked: tuple[Agent, FakeSource, Clock], capsys: pytest.CaptureFixture[str]
) -> None:
    agent, source, clock = clocked
    source.push(52.0, clock.mono_s)
    assert agent.tick_once() is True
    clock.wall_ns -= 3600 * SECOND_NS  # NTP steps the clock back an hour
    clock.advance(1.0)
    source.push(52.0, clock.mono_s)
    assert agent.tick_once() is True
    assert _timestamps(agent, "battery") == [T0, T0 - 3599 * SECOND_NS]
    assert "clock_jump" in capsys.readouterr().out
    agent.buffer.close()


def test_when_health_interval_passes_then_one_health_row_per_interval(clocked: tuple[Agent, FakeSource, Clock]) -> None:
    agent, source, clock = clocked
    for _ in range(25):
        source.push(52.0, clock.mono_s)
        agent.tick_once()
        clock.advance(1.0)
    assert _timestamps(agent, "collector_health") == [T0, T0 + 10 * SECOND_NS, T0 + 20 * SECOND_NS]
    agent.buffer.close()


@pytest.mark.integration
def test_when_running_then_metrics_endpoint_and_health_rows_report_the_pipeline(
    influx_server: InfluxServer, influx: InfluxClient, tmp_path: Path
) -> None:
    port = free_port()
    settings = _settings(tmp_path, influx_server.url, metrics_port=port, health_interval_s=1.0)
    source = FakeSource()
    agent = Agent(settings, InfluxClient(settings.influx), [source])
    agent.start()
    try:
        for i in range(12):
            source.push(52.0 + i / 100, time.monotonic())
            time.sleep(0.25)
        wait_until(
            lambda: bool(influx.query("SELECT * FROM collector_health WHERE lines_written > 0")),
            10,
            "a health row reporting written lines",
        )
        assert agent.healthy()
        source.loop_age = 120.0
        assert not agent.healthy(), "a hung source loop must stop the watchdog pings"
        source.loop_age = 0.0
        assert agent.healthy()
        text = urllib3.PoolManager().request("GET", f"http://127.0.0.1:{port}/metrics").data.decode()
    finally:
        flushed = agent.stop()
    assert flushed
    assert source.stopped
    assert not agent.healthy(), "stopped threads must fail the watchdog check"
    metrics = {
        line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line and not line.startswith("#")
    }
    assert metrics["bess_collector_lines_written_total"] > 0
    assert metrics['bess_collector_samples_polled_total{source="mqtt"}'] == 12
    assert metrics['bess_collector_source_state{device="shunt",source="mqtt",state="connected"}'] == 1
    assert metrics['bess_collector_source_state{device="bms",source="mqtt",state="absent"}'] == 1
    assert metrics['bess_collector_source_errors_total{kind="garbage_json",source="mqtt"}'] == 2
    assert metrics["bess_collector_buffer_depth_lines"] >= 0
    assert metrics["bess_collector_last_write_timestamp_seconds"] > time.time() - 60
    rows = [r for s in influx.query("SELECT * FROM collector_health") for r in s.rows()]
    assert rows and rows[-1]["host"] and rows[-1]["site"] == "t"
    assert max(int(r["polled_mqtt"] or 0) for r in rows) >= 8
    assert influx.query("SELECT voltage_v FROM battery WHERE device = 'shunt'")


class FlakyCountersSource(FakeSource):
    """A source whose counters fail for the first `failures` reads (the health probe's input)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def counters(self) -> dict[str, int]:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("dictionary changed size during iteration")
        return super().counters()


@pytest.mark.integration
def test_when_the_health_row_fails_then_that_seconds_data_still_lands_and_health_retries(
    influx_server: InfluxServer, influx: InfluxClient, tmp_path: Path
) -> None:
    clock = Clock()
    source = FlakyCountersSource(failures=1)
    settings = _settings(tmp_path, influx_server.url)
    agent = Agent(
        settings, InfluxClient(settings.influx), [source], wall_ns=lambda: clock.wall_ns, mono_s=lambda: clock.mono_s
    )
    source.start(agent._sink)
    for i in range(3):
        source.push(52.0 + i, clock.mono_s)
        assert agent.tick_once() is True, "a failing health row must not cost the second"
        clock.advance(1.0)
    assert agent.writer.drain(10.0)
    agent.buffer.close()
    volts = {r["time"]: r["voltage_v"] for s in influx.query("SELECT voltage_v FROM battery") for r in s.rows()}
    assert sorted(volts.values()) == [52.0, 53.0, 54.0]
    health = [r for s in influx.query("SELECT * FROM collector_health") for r in s.rows()]
    assert len(health) == 1, "the failed health row is retried the next second, then once per interval"
    assert health[0]["health_errors"] == 1 and health[0]["ticks"] == 2
