"""The optional retention policy against a real influxd: set at the collector's start on the database's default
policy or on a named one (created), left alone when not configured; a bad duration is a config error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bess_common.influx import InfluxClient
from deploy.localservices import InfluxServer
from tests.conftest import run_cli
from tests.integration.pipeline import CollectorProcess, write_config
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def _policies(influx: InfluxClient) -> dict[str, dict[str, object]]:
    return {str(r["name"]): r for s in influx.query('SHOW RETENTION POLICIES ON "bess"') for r in s.rows()}


def _run_collector(tmp_path: Path, influx_server: InfluxServer, influx_lines: str) -> CollectorProcess:
    tmp_path.mkdir(exist_ok=True)
    config = write_config(
        tmp_path / "c.toml", influx_server.url, modbus_port=None, mqtt_port=None, buffer_dir=tmp_path / "buffer"
    )
    config.write_text(config.read_text().replace("timeout_s = 3.0\n", f"timeout_s = 3.0\n{influx_lines}"))
    return CollectorProcess(config, tmp_path / "collector.log").start()


def _started(collector: CollectorProcess) -> bool:
    return "collector_started" in collector.log()


def test_when_a_duration_is_set_then_the_default_policy_gets_it_at_start(
    influx_server: InfluxServer, influx: InfluxClient, tmp_path: Path
) -> None:
    collector = _run_collector(tmp_path, influx_server, 'retention_duration = "400d"\n')
    try:
        wait_until(lambda: _started(collector), 30, "the collector's start")
        wait_until(lambda: _policies(influx).get("autogen", {}).get("duration") == "9600h0m0s", 10, "400 d on autogen")
    finally:
        assert collector.stop() == 0, collector.log()[-2000:]
    assert '"influx_retention_set"' in collector.log()
    # a second start with the same duration changes nothing and says nothing
    again = _run_collector(tmp_path / "again", influx_server, 'retention_duration = "400d"\n')
    try:
        wait_until(lambda: _started(again), 30, "the second start")
    finally:
        assert again.stop() == 0
    assert "influx_retention_set" not in again.log()


def test_when_a_named_policy_is_set_then_it_is_created_and_the_default_keeps_everything(
    influx_server: InfluxServer, influx: InfluxClient, tmp_path: Path
) -> None:
    collector = _run_collector(tmp_path, influx_server, 'retention_policy = "bess_edge"\nretention_duration = "30d"\n')
    try:
        wait_until(lambda: "bess_edge" in _policies(influx), 30, "the bess_edge policy")
        time.sleep(2.5)  # a collector_health row or two go into it
    finally:
        assert collector.stop() == 0, collector.log()[-2000:]
    policies = _policies(influx)
    assert policies["bess_edge"]["duration"] == "720h0m0s" and policies["bess_edge"]["default"] is False
    assert policies["autogen"]["duration"] == "0s" and policies["autogen"]["default"] is True  # untouched
    rows = influx.query('SELECT count(ticks) FROM "bess"."bess_edge"."collector_health"')
    assert rows and rows[0].rows()[0]["count"] >= 1, "the collector writes into its policy"


def test_when_no_duration_then_retention_is_left_alone(
    influx_server: InfluxServer, influx: InfluxClient, tmp_path: Path
) -> None:
    collector = _run_collector(tmp_path, influx_server, "")
    try:
        wait_until(lambda: _started(collector), 30, "the collector's start")
        wait_until(lambda: "autogen" in _policies(influx), 10, "the database")
    finally:
        assert collector.stop() == 0
    assert {n: (r["duration"], r["default"]) for n, r in _policies(influx).items()} == {"autogen": ("0s", True)}


def test_when_the_duration_is_malformed_then_check_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[influx]\nretention_duration = "30 days"\n')
    done = run_cli("collector", "check-config", "--config", str(config), timeout_s=60)
    assert done.returncode == 2
    assert "influx.retention_duration" in done.stdout + done.stderr
