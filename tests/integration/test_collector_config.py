"""Fault 10: `run` with a bad config (or wrong credentials) exits 2 with one clear line per problem, before
anything starts; an InfluxDB that is merely down is not a config problem."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import urllib3

from deploy.localservices import InfluxServer, free_port
from tests.conftest import python_env, run_cli
from tests.integration.pipeline import CollectorProcess, log_events, write_config
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def _run(config: Path) -> tuple[int, list[str]]:
    done = run_cli("collector", "run", "--config", str(config), timeout_s=60)
    return done.returncode, [line for line in done.stderr.splitlines() if line.strip()]


def test_when_config_file_missing_then_exit_2_one_line(tmp_path: Path) -> None:
    code, lines = _run(tmp_path / "missing.toml")
    assert code == 2
    assert lines == [f"{tmp_path / 'missing.toml'}: config file not found"]


def test_when_types_wrong_and_key_unknown_then_exit_2_every_problem_nothing_started(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        "http://127.0.0.1:8086",
        modbus_port=502,
        mqtt_port=None,
        buffer_dir=tmp_path / "buffer",
        batch_max_lines="many",
        colour="blue",
    )
    code, lines = _run(config)
    assert code == 2
    assert len(lines) == 2, lines
    assert any(line.startswith("collector.batch_max_lines:") for line in lines)
    assert any(line.startswith("collector.colour: unknown key") for line in lines)
    assert not (tmp_path / "buffer").exists(), "nothing may start before the config is valid"


def test_when_influx_host_does_not_resolve_then_exit_2(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        "http://influxdb.invalid:8086",
        modbus_port=502,
        mqtt_port=None,
        buffer_dir=tmp_path / "buffer",
    )
    code, lines = _run(config)
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("influx.url: host name 'influxdb.invalid' does not resolve")
    assert not (tmp_path / "buffer").exists()


def test_when_credentials_wrong_then_exit_2_saying_so(tmp_path: Path) -> None:
    server = InfluxServer(tmp_path / "influxd", auth=True)
    server.start()
    try:
        http = urllib3.PoolManager(retries=False)
        http.request(
            "POST", f"{server.url}/query", fields={"q": "CREATE USER admin WITH PASSWORD 'right' WITH ALL PRIVILEGES"}
        )
        config = write_config(
            tmp_path / "c.toml", server.url, modbus_port=502, mqtt_port=None, buffer_dir=tmp_path / "buffer"
        )
        config.write_text(config.read_text().replace("timeout_s = 3.0\n", 'timeout_s = 3.0\nusername = "admin"\n'))
        config.chmod(0o600)
        done = run_cli(
            "collector",
            "run",
            "--config",
            str(config),
            timeout_s=60,
            env={**python_env(), "BESS_INFLUX__PASSWORD": "wrong"},
        )
    finally:
        server.stop()
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stdout[-2000:]
    assert len(lines) == 1
    assert lines[0].startswith("influx: ")
    assert "401" in lines[0]
    assert "check the InfluxDB username/password or token" in lines[0]


def test_when_influx_is_down_at_start_then_it_runs_anyway_and_stops_cleanly(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        f"http://127.0.0.1:{free_port()}",
        modbus_port=free_port(),
        mqtt_port=None,
        buffer_dir=tmp_path / "buffer",
        shutdown_flush_timeout_s=1.0,
    )
    collector = CollectorProcess(config, tmp_path / "collector.log").start()
    try:
        wait_until(lambda: "collector_started" in log_events(collector.log()), 30, "the collector to start")
        time.sleep(1)
        assert collector.proc is not None and collector.proc.poll() is None
    finally:
        code = collector.stop(signal.SIGTERM)
    assert code == 0
    assert "influx_unreachable_at_start" in log_events(collector.log())
