"""`make demo` end to end, shortened: live collector, backfill, backtest with a fine-tune, report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import python_env, run_cli

pytestmark = pytest.mark.integration


def test_when_the_demo_runs_then_every_stage_finishes_and_the_report_exists(
    tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    env = {**python_env(), "BESS_FORECASTER__BASE_MODEL": str(tiny_chronos_dir)}  # offline, never the hub
    done = run_cli(
        "deploy.demo", "--workdir", str(tmp_path / "demo"), "--live-seconds", "10", "--history-days", "3",
        "--max-cutoffs", "4", "--finetune-steps", "2", timeout_s=420, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    for stage in ("live", "backfill", "backtest", "report"):
        assert re.search(rf"stage {stage}: \d+ s", done.stdout), stage
    report = Path(re.findall(r"REPORT: (\S+)", done.stdout)[-1])
    assert report.is_file() and report.stat().st_size > 10_000
    manifest = json.loads((tmp_path / "demo" / "runs" / "demo" / "manifest.json").read_text())
    assert manifest["base_model"] == str(tiny_chronos_dir) and manifest["base_model_is_stand_in"] is False
    assert manifest["finetune"]["steps"] == 2 and manifest["cutoffs"]["planned"] == 4
    table = done.stdout.split("models over every held-back window", 1)[1].split("run folder:", 1)[0]
    rows = [re.split(r"\s{2,}", line.strip()) for line in table.splitlines()[2:] if line.strip()]
    shown = {tuple(row[:2]) for row in rows if len(row) == 5}
    gbm = "gradient boosting (site-trained)"  # display names, as in the report; real weights: no [STAND-IN]
    expected = {("base", "all_covariates"), ("fine-tuned", "all_covariates"), (gbm, "all_covariates"),
                (gbm, "target_only"), ("persistence", "none")}  # fmt: skip
    assert expected <= shown, table
