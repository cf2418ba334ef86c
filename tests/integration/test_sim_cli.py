"""`bess-collector simulate`: backfill into a real influxd, live mode with signals, usage errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import urllib3
from pymodbus.client import ModbusTcpClient

from bess_common.influx import InfluxClient
from collector.simulator.history import history_samples, plan_samples
from collector.simulator.physics import BessPhysics
from collector.simulator.pvforecast import SimPvForecast
from deploy.localservices import InfluxServer, MosquittoServer, logged_port
from tests.conftest import REPO_ROOT, python_env, run_cli

pytestmark = pytest.mark.integration

START, END = "2025-11-09T10:00:00Z", "2025-11-09T12:00:00Z"
START_NS = 1_762_682_400 * 10**9
END_NS = START_NS + 2 * 3600 * 10**9


def _backfill(url: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "collector",
        "simulate",
        "--backfill",
        "--start",
        START,
        "--end",
        END,
        "--step-s",
        "60",
        "--influx-url",
        url,
        "--database",
        "bess",
        "--site",
        "lab",
        "--seed",
        "4",
        timeout_s=120,
    )


def test_when_backfilling_then_rows_land_and_a_rerun_overwrites(
    influx_server: InfluxServer, influx: InfluxClient
) -> None:
    first = _backfill(influx_server.url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "backfill_done" in first.stdout
    counts = influx.query("SELECT count(voltage_v) FROM battery GROUP BY device")
    assert {s.tags["device"]: s.rows()[0]["count"] for s in counts} == {"bms": 120, "shunt": 120}
    cells = influx.query("SELECT count(voltage_v) FROM cell GROUP BY cell")
    assert len(cells) == 16
    expected = next(
        s
        for s in history_samples(BessPhysics(4), START_NS + 3600 * 10**9, END_NS, 60, site="lab")
        if s.tags.get("device") == "shunt" and s.measurement == "battery"
    )
    row = influx.query(f"SELECT voltage_v, soc_pct FROM battery WHERE device='shunt' AND time = {expected.ts_ns}")
    assert row[0].rows()[0]["voltage_v"] == expected.fields["voltage_v"]
    assert row[0].rows()[0]["soc_pct"] == expected.fields["soc_pct"]
    _assert_pv_forecast_issues(influx)
    # the plan as it stood when the span began: one snapshot, every slot, all at the first second
    plan = influx.query("SELECT * FROM gx_plan GROUP BY kind, slot")
    expected_plan = {
        (p.tags["kind"], p.tags["slot"]): p for p in plan_samples(BessPhysics(4), START_NS, END_NS, site="lab")
    }
    assert len(plan) == len(expected_plan) == 48 + 5 + 1
    for series in plan:
        [point] = series.rows()
        want = expected_plan[(series.tags["kind"], series.tags["slot"])]
        assert point["time"] == START_NS == want.ts_ns
        assert {k: v for k, v in point.items() if k not in ("time", "site") and v is not None} == want.fields
    again = _backfill(influx_server.url)
    assert again.returncode == 0
    counts = influx.query("SELECT count(voltage_v) FROM battery GROUP BY device")
    assert {s.tags["device"]: s.rows()[0]["count"] for s in counts} == {"bms": 120, "shunt": 120}
    assert influx.query("SELECT count(power_w) FROM pv_forecast")[0].rows()[0]["count"] == 2 * 48


def _assert_pv_forecast_issues(influx: InfluxClient) -> None:
    """Hourly issues at 10:00 and 11:00, 48 h each; the one known at 11:30 is the 11:00 issue, near the PV."""
    issues = influx.query("SELECT count(power_w) FROM pv_forecast WHERE provider = 'simulator' GROUP BY time(1h)")
    counts = {r["time"]: r["count"] for r in issues[0].rows() if r["count"]}
    assert counts == {START_NS: 48, START_NS + 3600 * 10**9: 48}
    cut_ns = START_NS + 90 * 60 * 10**9
    latest = influx.query(f"SELECT last(power_w) FROM pv_forecast WHERE provider = 'simulator' AND time <= {cut_ns}")
    issued_ns = latest[0].rows()[0]["time"]
    assert issued_ns == START_NS + 3600 * 10**9  # the forecast as issued before 11:30
    rows = influx.query(f"SELECT * FROM pv_forecast WHERE provider = 'simulator' AND time = {issued_ns}")[0].rows()
    expected = SimPvForecast(BessPhysics(4)).issue(issued_ns)
    landed = sorted(rows, key=lambda r: int(r["step"]))
    assert [(r["target_ns"], r["period_s"], r["power_w"]) for r in landed] == [
        (p.target_ns, p.period_s, p.power_w) for p in expected.periods
    ]
    pv = influx.query(f"SELECT mean(pv_w) FROM system WHERE time >= {issued_ns} AND time < {END_NS}")
    actual_w = pv[0].rows()[0]["mean"]
    assert actual_w > 500.0
    assert abs(landed[0]["power_w"] - actual_w) < 0.25 * actual_w  # the next hour's forecast, honest but close
    assert landed[0]["power_w"] != actual_w


def test_when_running_live_then_it_serves_that_firmware_and_exits_0_on_sigterm(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    log_path = tmp_path / "simulate.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "collector", "simulate", "--modbus-port", "0", "--mqtt-host", "127.0.0.1",
                "--mqtt-port", str(mosquitto.port), "--seed", "3", "--firmware", "v1.0.42",
                "--pv-forecast-port", "0", "--pv-forecast-tz", "Europe/Berlin",
            ],
            cwd=REPO_ROOT, env=python_env(), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        port = logged_port(proc, log_path, "simulator_started", "modbus_port")  # port 0: the OS chose it
        client = ModbusTcpClient("127.0.0.1", port=port, timeout=3, retries=0)
        assert client.connect()
        voltage = client.read_holding_registers(840, count=1, device_id=100)
        clock = client.read_holding_registers(830, count=4, device_id=100)  # added in v1.0.53
        client.close()
        assert 400 < voltage.registers[0] < 600  # 40-60 V at scale 10
        assert clock.isError() and clock.exception_code == 2
        pv_port = logged_port(proc, log_path, "simulator_started", "pv_forecast_port")
        answer = urllib3.PoolManager().request("GET", f"http://127.0.0.1:{pv_port}/estimate/51.3/9.5/30/0/4.2")
        assert answer.status == 200
        forecast = json.loads(answer.data)
        assert forecast["message"]["info"]["timezone"] == "Europe/Berlin"
        assert all(" " in t for t in forecast["result"]["watt_hours_period"])  # naive local time by default
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log_path.read_text()
    assert proc.returncode == 0, out
    assert "simulator_started" in out
    assert "simulator_stopped" in out


@pytest.mark.parametrize(
    "args",
    [
        ["--seed", "1"],  # neither server nor backfill
        ["--modbus-port", "0", "--firmware", "v9.9.9"],  # not a release in collector/gx/firmware.csv
        ["--backfill", "--start", "2025-01-02", "--end", "2025-01-01"],
        ["--backfill", "--start", "yesterday", "--end", "2025-01-01"],
        ["--modbus-port", "0", "--bms", "Temperatures"],  # not a BMS family the simulator knows
        ["--modbus-port", "0", "--pv-forecast-port", "0", "--pv-forecast-tz", "Mars/Olympus"],
    ],
)
def test_when_arguments_are_wrong_then_exit_2(args: list[str]) -> None:
    result = run_cli("collector", "simulate", *args, timeout_s=60)
    assert result.returncode == 2, result.stdout + result.stderr
