"""Both shared recordings end to end: import (a slice of) each with `bess-collector import`, backtest it with
the tiny offline Chronos-2 and a handful of cut-offs, and render the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from deploy.localservices import InfluxServer
from tests.conftest import REPO_ROOT, SHARED_DATA, python_env, run_cli
from tests.integration.test_import_pylontech import members, small_tarball

pytestmark = pytest.mark.integration

HA_DIR = SHARED_DATA / "powerflow_sim"
PYLON_TARBALL = SHARED_DATA / "pylontech_scp" / "BMS_log_raw_csv.tar.gz"
MAPPINGS = REPO_ROOT / "deploy" / "import-mappings"
needs_data = pytest.mark.skipif(not HA_DIR.is_dir() or not PYLON_TARBALL.is_file(), reason="no ../shared/data")

TASKS = """
[[forecaster.tasks]]
name = "ha_1m"
resolution = "1m"
context_steps = 720
horizon_steps = 30
cadence = "1h"
past_covariates = ["battery_soc_pct", "pv_power_w"]
max_last_gap_steps = 30

[[forecaster.tasks]]
name = "pylon_15m"
resolution = "15m"
context_steps = 192
horizon_steps = 32
cadence = "2h"
past_covariates = ["battery_soc_pct", "battery_voltage_v"]
"""


def config(tmp_path: Path, server: InfluxServer, tiny: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[influx]\nurl = "{server.url}"\ndatabase = "bess"\n'
        f'[collector]\nbuffer_dir = "{tmp_path / "buffer"}"\nbuffer_sync = "normal"\nretry_max_s = 0.5\n'
        f'[logging]\nformat = "json"\n[forecaster]\nbase_model = "{tiny}"\nregistry_dir = "{tmp_path / "models"}"\n'
        '[forecaster.finetune]\ntask = "ha_1m"\ncontext_steps = 128\nnum_steps = 2\neval_steps = 1\n'
        "batch_size_rows = 16\nlearning_rate = 0.001\n" + TASKS
    )
    return path


def backtest_and_report(
    cfg: Path, site: str, task: str, times: list[str], out: Path, *extra: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    env = {**python_env(), "BESS_SITE": site}  # the import's site tag (from the mapping) selects the series
    done = run_cli(
        "forecaster", "backtest", "--config", str(cfg), "--task", task, *times, "--max-cutoffs", "4",
        "--finetune-steps", "2", "--out", str(out), "--run-id", site, "--dataset", site, *extra, timeout_s=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = out / site
    report = run_cli(
        "forecaster", "report", "--run", str(run_dir), "--out", str(run_dir / "report"), "--resamples", "50"
    )
    assert report.returncode == 0, report.stderr
    assert (run_dir / "report" / "report.html").stat().st_size > 10_000
    return pd.read_csv(run_dir / "forecasts.csv"), json.loads((run_dir / "manifest.json").read_text())


@needs_data
def test_when_the_home_assistant_recording_is_imported_then_it_backtests_and_reports(
    influx_server: InfluxServer, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    cfg = config(tmp_path, influx_server, tiny_chronos_dir)
    files = [str(HA_DIR / f"{name}.csv") for name in ("battery_power", "battery_soc", "pv_power")]
    done = run_cli(
        "collector", "import", "--config", str(cfg), "--format", "ha",
        "--mapping", str(MAPPINGS / "powerflow-ha.toml"), *files, timeout_s=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    times = ["--start", "2024-11-27T00:00:00Z", "--split", "2024-11-29T00:00:00Z", "--end", "2024-11-30T00:00:00Z"]
    # Home Assistant writes state changes only: a value holds until the next row (idle nights have none).
    frame, manifest = backtest_and_report(cfg, "powerflow-es", "ha_1m", times, tmp_path / "runs", "--hold-last", "720")
    assert frame["cutoff"].nunique() == 4 and manifest["hold_last_steps"] == 720
    assert manifest["data"]["target_buckets_with_data"] > 2 * 1440 * 0.9  # the 1-min grid of 3 days is nearly full
    assert frame["actual"].abs().max() > 500  # real charge/discharge, not zeros
    forecast = {m["name"] for m in manifest["models"] if m["windows"] > 0}  # every registered model that could
    assert set(frame["model"]) == forecast and {"base", "finetuned", "persistence"} <= forecast
    # A 1-day context at 1 minute holds exactly one season: seasonal naive has no spread to draw from, so it is
    # reported as not available (with the reason) instead of being scored as its own row.
    seasonal = next(m for m in manifest["models"] if m["name"] == "seasonal_naive")
    assert seasonal["windows"] == 0 and sum(seasonal["not_available"].values()) == 4, seasonal


@needs_data
def test_when_pylontech_daily_logs_are_imported_then_they_backtest_and_report(
    influx_server: InfluxServer, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    cfg = config(tmp_path, influx_server, tiny_chronos_dir)
    days = tuple(f"2021-06-{d:02d}.csv" for d in range(1, 7))
    tarball = small_tarball(tmp_path / "slice.tar.gz", members(days))
    done = run_cli(
        "collector", "import", "--config", str(cfg), "--format", "pylontech-bms",
        "--mapping", str(MAPPINGS / "pylontech-scp.toml"), str(tarball), timeout_s=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    times = ["--start", "2021-06-01T00:00:00Z", "--split", "2021-06-04T00:00:00Z", "--end", "2021-06-07T00:00:00Z"]
    frame, manifest = backtest_and_report(cfg, "pylontech-scp", "pylon_15m", times, tmp_path / "runs")
    assert frame["cutoff"].nunique() == 4
    assert manifest["resolution"] == "15m" and manifest["finetune"]["train_range"][0] == "2021-06-01T00:00:00Z"
    assert frame["actual"].abs().max() > 100
