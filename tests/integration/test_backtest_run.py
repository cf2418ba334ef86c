"""The backtest command end to end on synthetic history in a real InfluxDB, with a tiny offline Chronos-2:
run folder in the report's contract, tagged forecasts in InfluxDB, determinism, no post-split leakage into
the fine-tune, clear usage errors, and the report rendered from the run."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pandas as pd
import pytest

from bess_common.influx import InfluxClient
from deploy.localservices import InfluxServer
from forecaster.report.runfolder import load_run
from forecaster.standin import MINI_WEIGHTS, STAND_IN_VERSION, build_stand_in, is_stand_in
from tests.conftest import fc_synthetic_rows, python_env, run_cli

pytestmark = pytest.mark.integration

NS = 1_000_000_000
DAY_NS = 86400 * NS
START_NS = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
ARGS = ["--start", "2026-01-01T00:00:00Z", "--split", "2026-01-03T12:00:00Z", "--end", "2026-01-04T00:00:00Z"]


def config_text(influx_url: str, base_model: str, registry: Path) -> str:
    return f"""site = "shop"
[influx]
url = "{influx_url}"
[logging]
format = "json"
[forecaster]
base_model = "{base_model}"
registry_dir = "{registry}"
[forecaster.finetune]
task = "t5m"
validation_days = 0.5
context_steps = 128
num_steps = 4
learning_rate = 0.01
batch_size_rows = 18
eval_steps = 2
[[forecaster.tasks]]
name = "t5m"
resolution = "5m"
context_steps = 288
horizon_steps = 24
cadence = "1h"
"""


def fill(influx: InfluxClient, start_ns: int, end_ns: int, seed: int = 0) -> None:
    rows = fc_synthetic_rows(start_ns, end_ns, step_s=60, seed=seed)
    for i in range(0, len(rows), 5000):
        influx.write(rows[i : i + 5000])


def backtest(config: Path, out: Path, *extra: str) -> tuple[int, str]:
    done = run_cli(
        "forecaster", "backtest", "--config", str(config), "--task", "t5m", *ARGS, "--max-cutoffs", "4",
        "--step", "6", "--out", str(out), "--run-id", "bt-test", "--seed", "3", *extra, timeout_s=240,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def config(influx: InfluxClient, influx_server: InfluxServer, tiny_chronos_dir: Path, tmp_path: Path) -> Path:
    fill(influx, START_NS, START_NS + 3 * DAY_NS)
    path = tmp_path / "config.toml"
    path.write_text(config_text(influx_server.url, str(tiny_chronos_dir), tmp_path / "models"))
    return path


def test_when_a_backtest_runs_then_the_run_folder_influx_and_report_hold_every_model_and_variant(
    config: Path, influx: InfluxClient, tmp_path: Path
) -> None:
    code, output = backtest(config, tmp_path / "runs")
    assert code == 0, output
    run_dir = tmp_path / "runs" / "bt-test"
    frame = pd.read_csv(run_dir / "forecasts.csv")
    pairs = set(zip(frame["model"], frame["variant"], strict=True))
    assert pairs == {
        *((m, v) for m in ("base", "finetuned") for v in ("target_only", "past_covariates", "all_covariates")),
        ("persistence", "none"),
    }  # a context of one day (288 x 5 min) is too short for seasonal naive's spread: not available, not drawn
    assert frame["cutoff"].nunique() == 4
    assert (frame["cutoff"] >= "2026-01-03T12:00:00Z").all() and (frame["timestamp"] < "2026-01-04").all()
    assert set(frame["regime"]) <= {"quiet", "cycling", "transition"}
    assert frame.groupby(["model", "variant", "cutoff"]).size().eq(24).all()
    assert frame["actual"].notna().all()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["finetune"]["train_range"][0] == "2026-01-01T00:00:00Z"
    assert manifest["finetune"]["validation_range"][1] == "2026-01-03T12:00:00Z"
    assert manifest["base_model_is_stand_in"] is False and manifest["seed"] == 3
    assert f"in {manifest['wall_s']} s (wall time" in output  # one wall time: the CLI line is the manifest's
    data = manifest["data"]
    assert data["target_buckets"] == 3 * 288 and 0 < data["target_buckets_with_data"] <= data["target_buckets"]
    seasonal = next(m for m in manifest["models"] if m["name"] == "seasonal_naive")
    assert seasonal["windows"] == 0 and "needs 298 steps" in next(iter(seasonal["not_available"]))
    scores = pd.read_csv(run_dir / "scores.csv")
    assert {"mae_w", "wql", "coverage_80", "skill", "variant", "regime", "lead_bucket"} <= set(scores.columns)
    assert set(scores["variant"]) == {"target_only", "past_covariates", "all_covariates", "none"}

    stored = influx.query(
        'SELECT count("median") FROM "forecast" WHERE "run" = \'bt-test\' GROUP BY "model", "variant"'
    )
    counts = {(s.tags["model"], s.tags["variant"]): s.values[0][1] for s in stored}
    assert counts == {pair: 4 * 24 for pair in pairs}  # variants do not overwrite each other
    assert load_run(run_dir).forecasts.shape[0] == len(frame)
    done = run_cli(
        "forecaster", "report", "--run", str(run_dir), "--out", str(tmp_path / "report"), "--resamples", "50"
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000
    report = (tmp_path / "report" / "report.md").read_text()
    assert "seasonal naive was not available in this run, so it has no rows: seasonal naive needs 298" in report


def test_when_run_twice_then_identical_and_post_split_data_cannot_change_the_adapter(
    config: Path, influx: InfluxClient, tmp_path: Path
) -> None:
    assert backtest(config, tmp_path / "a")[0] == 0
    assert backtest(config, tmp_path / "b")[0] == 0
    first = (tmp_path / "a" / "bt-test" / "forecasts.csv").read_bytes()
    assert first == (tmp_path / "b" / "bt-test" / "forecasts.csv").read_bytes()
    sha = json.loads((tmp_path / "a" / "bt-test" / "manifest.json").read_text())["finetune"]["adapter_sha256"]

    split_ns = START_NS + 2 * DAY_NS + DAY_NS // 2
    fill(influx, split_ns, START_NS + 3 * DAY_NS, seed=99)  # overwrite every point after the split
    assert backtest(config, tmp_path / "c")[0] == 0
    after = json.loads((tmp_path / "c" / "bt-test" / "manifest.json").read_text())["finetune"]["adapter_sha256"]
    assert after == sha  # the fine-tune never saw data at or after the split
    assert (tmp_path / "c" / "bt-test" / "forecasts.csv").read_bytes() != first  # but the actuals changed


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (["--task", "nope"], "unknown task 'nope'"),
        (["--split", "2026-01-05T00:00:00Z"], "is outside"),
        (["--start", "2026-01-03T08:00:00Z"], "too little data before the split"),
    ],
)
def test_when_the_request_is_unusable_then_exit_2_with_a_clear_line(
    config: Path, tmp_path: Path, change: list[str], expected: str
) -> None:
    args = ["--task", "t5m", *ARGS]
    for i in range(0, len(change), 2):
        args[args.index(change[i]) + 1] = change[i + 1]
    done = run_cli("forecaster", "backtest", "--config", str(config), *args, "--out", str(tmp_path / "runs"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in done.stderr


def test_when_the_base_model_is_unavailable_then_one_line_says_so_and_the_stand_in_is_labelled(
    influx: InfluxClient, influx_server: InfluxServer, tmp_path: Path
) -> None:
    fill(influx, START_NS, START_NS + 3 * DAY_NS)
    config = tmp_path / "config.toml"
    config.write_text(config_text(influx_server.url, str(tmp_path / "no-such-model"), tmp_path / "models"))
    code, output = backtest(config, tmp_path / "runs")
    assert code == 1 and "--allow-stand-in" in output and "huggingface-cli download" in output

    code, output = backtest(config, tmp_path / "runs", "--allow-stand-in")
    assert code == 0, output
    notices = [line for line in output.splitlines() if line.startswith("base model unavailable")]
    assert len(notices) == 1 and "STAND-IN" in notices[0] and "no-such-model" in notices[0]
    run_dir = tmp_path / "runs" / "bt-test"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["base_model_is_stand_in"] is True and manifest["base_model"] == STAND_IN_VERSION
    frame = pd.read_csv(run_dir / "forecasts.csv")
    learned = frame[frame["model"].isin(["base", "finetuned"])]
    assert learned["model_version"].str.contains(STAND_IN_VERSION).all()
    assert (learned["fallback"] == 0).all()  # the stand-in really forecast; nothing fell back
    assert load_run(run_dir).stand_in


def test_when_the_model_hub_is_unreachable_then_it_is_said_once_and_nothing_retries(
    influx: InfluxClient, influx_server: InfluxServer, tmp_path: Path
) -> None:
    fill(influx, START_NS, START_NS + 3 * DAY_NS)
    config = tmp_path / "config.toml"
    config.write_text(config_text(influx_server.url, "amazon/chronos-2", tmp_path / "models"))
    with socket.socket() as probe:  # a loopback port nobody listens on: the hub is unreachable
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    env = {**python_env(), "HF_ENDPOINT": f"http://127.0.0.1:{closed_port}", "HF_HOME": str(tmp_path / "hf")}
    done = run_cli("forecaster", "backtest", "--config", str(config), "--task", "t5m", *ARGS, "--out",
                   str(tmp_path / "runs"), "--allow-stand-in", "--no-finetune", "--max-cutoffs", "2", env=env,
                   timeout_s=240)  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    said = [line for line in output.splitlines() if "unreachable" in line]
    assert len(said) == 1 and "STAND-IN" in said[0], output
    assert "Retrying" not in output and "thrown while requesting" not in output


def test_when_the_stand_in_is_built_twice_then_it_is_the_committed_mini_and_marked(tmp_path: Path) -> None:
    def digest(path: Path) -> str:
        return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(path.glob("*.safetensors")))).hexdigest()

    a = build_stand_in(tmp_path / "a")
    b = build_stand_in(tmp_path / "b")
    assert is_stand_in(a) and not is_stand_in(tmp_path)
    assert digest(a) == digest(b) == digest(MINI_WEIGHTS)
    assert STAND_IN_VERSION == "stand-in:mini"
