"""`serve` re-trains and serves the gradient-boosting model even when the Chronos-2 weights are unreachable:
the scheduled job trains it on InfluxDB's data alone, and its forecasts land beside the baselines."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bess_common.influx import InfluxClient
from deploy.localservices import InfluxServer
from forecaster.registry import Registry
from tests.conftest import REPO_ROOT, fc_synthetic_rows, python_env
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

NS = 1_000_000_000


def models_written(influx: InfluxClient) -> set[str]:
    series = influx.query('SHOW TAG VALUES FROM "forecast" WITH KEY = "model"')
    return {row["value"] for s in series for row in s.rows()}


def test_when_the_base_model_is_unreachable_then_serve_still_retrains_and_serves_gbm(
    influx: InfluxClient, influx_server: InfluxServer, tmp_path: Path
) -> None:
    now = time.time_ns()
    rows = fc_synthetic_rows(now - 5 * 86400 * NS, now, step_s=60)
    for i in range(0, len(rows), 5000):
        influx.write(rows[i : i + 5000])
    gbm = Registry(tmp_path / "models" / "gbm")
    config = tmp_path / "config.toml"
    config.write_text(f"""
[influx]
url = "{influx_server.url}"
[logging]
format = "json"
[forecaster]
base_model = "{tmp_path / "no-such-model"}"
registry_dir = "{tmp_path / "models"}"
[forecaster.finetune]
task = "t1m"
cron = "*/30 * * * * *"
train_days = 3
validation_days = 0.5
gate_days = 0.5
gate_windows = 6
[[forecaster.tasks]]
name = "t1m"
resolution = "1m"
context_steps = 240
horizon_steps = 30
cadence = "1m"
""")
    proc = subprocess.Popen(
        [sys.executable, "-m", "forecaster", "serve", "--config", str(config)],
        cwd=REPO_ROOT,
        env=python_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: "persistence" in models_written(influx), 90, "baseline forecasts", max_poll_s=1.0)
        wait_until(lambda: bool(gbm.versions()), 150, "a scheduled gbm re-train", max_poll_s=1.0)
        first = gbm.versions()[0]
        assert first.manifest["gate"]["incumbent"] == "persistence" and first.manifest["gate"]["cutoffs"] >= 1
        if gbm.active() is None:  # the gate refused it: promote by hand; serve must pick it up
            gbm.set_active(first.version)
        wait_until(lambda: "gbm" in models_written(influx), 150, "gbm forecasts", max_poll_s=1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out[-3000:]
    events = [json.loads(line).get("event") for line in out.splitlines() if line.startswith("{")]
    assert "finetune_launched" in events and "gbm_active" in events
    assert first.version in out  # the child's verdict line, in the service's output
