"""`bess-forecaster serve` end to end on synthetic history: all four models, scores per regime, a scheduled
fine-tune with gating, pick-up of a promoted version without restart, an on-demand fine-tune, clean SIGTERM."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bess_common.influx import InfluxClient
from deploy.localservices import InfluxServer
from forecaster.registry import Registry
from tests.conftest import REPO_ROOT, fc_synthetic_rows, python_env, run_cli
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

NS = 1_000_000_000


def models_written(influx: InfluxClient, task: str) -> set[str]:
    series = influx.query(f'SHOW TAG VALUES FROM "forecast" WITH KEY = "model" WHERE "task" = \'{task}\'')
    return {row["value"] for s in series for row in s.rows()}


def config_text(influx_url: str, tiny: Path, registry: Path) -> str:
    return f"""
[influx]
url = "{influx_url}"
[logging]
format = "json"
[forecaster]
base_model = "{tiny}"
registry_dir = "{registry}"
[forecaster.finetune]
task = "t5m"
cron = "*/20 * * * * *"
train_days = 2
validation_days = 0.5
gate_days = 0.5
gate_windows = 4
context_steps = 128
num_steps = 4
learning_rate = 0.01
batch_size_rows = 18
eval_steps = 2
keep_versions = 3
[[forecaster.tasks]]
name = "t5m"
resolution = "5m"
context_steps = 576
horizon_steps = 24
cadence = "5m"
[[forecaster.tasks]]
name = "fast"
resolution = "20s"
context_steps = 128
horizon_steps = 6
cadence = "20s"
"""


def test_when_serving_then_all_models_scores_and_finetunes_work_end_to_end(
    influx: InfluxClient, influx_server: InfluxServer, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    now = time.time_ns()
    rows = fc_synthetic_rows(now - 4 * 86400 * NS, now, step_s=20)
    for i in range(0, len(rows), 5000):
        influx.write(rows[i : i + 5000])
    registry = Registry(tmp_path / "models")
    config = tmp_path / "config.toml"
    config.write_text(config_text(influx_server.url, tiny_chronos_dir, registry.root))
    # Forecasts from 3 h ago, whose horizons have ended, so that the service's first scoring run has work.
    past = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now / NS - 3 * 3600))
    assert run_cli("forecaster", "predict", "--config", str(config), "--task", "t5m", "--at", past).returncode == 0

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(0.2)
    messages: set[str] = set()
    reading = threading.Event()
    reading.set()

    def drain() -> None:  # like systemd: read every notification as it comes
        while reading.is_set():
            with contextlib.suppress(TimeoutError):
                messages.update(notify.recv(4096).decode().splitlines())

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = {**python_env(), "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "2000000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "forecaster", "serve", "--config", str(config)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:  # each check queries InfluxDB or the registry: poll at most once a second
        wait_until(
            lambda: models_written(influx, "t5m") >= {"base", "persistence", "seasonal_naive"},
            90,
            "forecasts",
            max_poll_s=1.0,
        )
        wait_until(lambda: bool(influx.query('SELECT * FROM "forecast_score" LIMIT 1')), 60, "scores", max_poll_s=1.0)
        wait_until(lambda: bool(registry.versions()), 120, "a scheduled fine-tune", max_poll_s=1.0)
        first = registry.versions()[0]
        assert "promote" in first.manifest["gate"] and first.manifest["gate"]["cutoffs"] >= 1
        if registry.active() is None:  # the gate refused it: promote by hand, serve must pick it up
            assert run_cli("forecaster", "promote", "--config", str(config), first.version).returncode == 0
        active = registry.active()
        assert active is not None
        wait_until(
            lambda: "finetuned" in models_written(influx, "fast"), 60, "the promoted version in use", max_poll_s=1.0
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out[-3000:]
    reading.clear()
    reader.join()
    notify.close()
    assert {"READY=1", "WATCHDOG=1", "STOPPING=1"} <= messages
    events = [json.loads(line).get("event") for line in out.splitlines() if line.startswith("{")]
    assert "forecaster_stopped" in events and "finetune_launched" in events

    scores = influx.query('SELECT * FROM "forecast_score" WHERE "task" = \'t5m\' GROUP BY "model", "regime"')
    found = {(s.tags["model"], s.tags["regime"]) for s in scores}
    assert {m for m, _ in found} >= {"base", "persistence", "seasonal_naive"}
    assert ("base", "all") in found and any(r in {"quiet", "cycling", "transition"} for _, r in found)
    versions = {
        r["model_version"]
        for s in influx.query('SELECT * FROM "forecast" WHERE "model" = \'finetuned\'')
        for r in s.rows()
    }
    assert active.version in versions

    on_demand = run_cli("forecaster", "finetune", "--now", "--config", str(config), timeout_s=300)
    assert on_demand.returncode == 0, on_demand.stdout + on_demand.stderr
    newest = registry.versions()[-1]
    assert newest.version != first.version and newest.version in on_demand.stdout
    assert (registry.active() == newest) == newest.manifest["gate"]["promote"]  # gated, promoted only if better
    listed = run_cli("forecaster", "models", "--config", str(config))
    current = registry.active()
    assert current is not None and listed.returncode == 0
    assert f"* {current.version}" in listed.stdout
