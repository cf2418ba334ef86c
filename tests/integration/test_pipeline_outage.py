"""Fault 1: InfluxDB stopped for 60 s, then restarted: every second of the outage lands, in order, once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bess_common.influx import InfluxClient
from collector.simulator.gx import GxSimulator
from deploy.localservices import InfluxServer
from tests.integration.pipeline import (
    SECOND_NS,
    CollectorProcess,
    first_shunt_second,
    log_events,
    shunt_seconds,
    whole_seconds,
    write_config,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def gx() -> Iterator[GxSimulator]:
    sim = GxSimulator(seed=11, modbus_port=0, mqtt_port=None).start()
    yield sim
    sim.stop()


def test_when_influx_down_60s_then_every_second_lands_in_order_without_duplicates(
    influx_server: InfluxServer, influx: InfluxClient, gx: GxSimulator, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "c.toml",
        influx_server.url,
        modbus_port=gx.modbus_port,
        mqtt_port=None,
        buffer_dir=tmp_path / "buffer",
    )
    collector = CollectorProcess(config, tmp_path / "collector.log").start()
    try:
        since = time.time_ns()
        wait_until(lambda: first_shunt_second(influx, since) is not None, 30, "the first shunt row")
        first = first_shunt_second(influx, since)
        assert first is not None
        time.sleep(2)
        down_ns = time.time_ns()
        influx_server.stop()
        time.sleep(60)
        influx_server.start()
        up_ns = time.time_ns()
        expected = whole_seconds(first, up_ns + 2 * SECOND_NS)
        wait_until(
            lambda: len(shunt_seconds(influx, first, expected[-1] + 1)) >= len(expected),
            60,
            "the outage backlog to land",
        )
        end_ns = time.time_ns()
    finally:
        code = collector.stop()
    assert code == 0, collector.log()[-3000:]
    landed = shunt_seconds(influx, first, end_ns // SECOND_NS * SECOND_NS)
    assert landed == whole_seconds(first, landed[-1] + 1), "every second once, in order, no gaps"
    outage = [t for t in landed if down_ns <= t < up_ns]
    assert len(outage) >= 59
    count = influx.query(
        f"SELECT count(voltage_v) FROM battery WHERE device = 'shunt' AND time >= {first} AND time <= {landed[-1]}"
    )
    assert count[0].values[0][1] == len(landed)  # no duplicate points for the same second
    events = log_events(collector.log())
    assert events.count("influx_down") == 1
    assert events.count("influx_recovered") == 1
