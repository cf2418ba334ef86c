"""The site-trained gradient-boosting model in a backtest on simulated site data: trained before the split,
forecast per covariate variant, scored, and its own row in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.simsite import minute_series, system_lines
from bess_common.influx import InfluxClient
from forecaster.backtest.plan import make_plan
from forecaster.backtest.run import Request, read_series, run_backtest
from forecaster.config import FinetuneSettings, ForecasterSettings, ForecastTask
from forecaster.report import build_report
from forecaster.store import ForecastStore
from forecaster.windows import NS

pytestmark = pytest.mark.integration

DAY_NS = 86400 * NS
TASK = ForecastTask(name="intraday")


def test_the_gbm_is_trained_before_the_split_and_reported_per_variant(influx: InfluxClient, tmp_path: Path) -> None:
    series, start = minute_series(seed=5, first_day=20_300, days=10)
    lines = system_lines(series, start)
    for i in range(0, len(lines), 5000):
        influx.write(lines[i : i + 5000])
    settings = ForecasterSettings(
        base_model=str(tmp_path / "no-such-model"),
        registry_dir=tmp_path / "models",
        tasks=[TASK],
        finetune=FinetuneSettings(task=TASK.name, validation_days=1.0),
    )
    split = start + 8 * DAY_NS
    plan = make_plan(TASK, start, split, start + 10 * DAY_NS, every_steps=120, max_cutoffs=16)
    store = ForecastStore(influx, "shop")
    request = Request(run_id="bt-gbm", out_dir=tmp_path / "runs", finetune=False)
    outcome = run_backtest(plan, read_series(store, plan), None, settings=settings, store=store, request=request)

    frame = pd.read_csv(outcome.run_dir / "forecasts.csv")
    gbm = frame[frame["model"] == "gbm"]
    assert set(gbm["variant"]) == {"target_only", "past_covariates", "all_covariates"}
    assert not gbm["fallback"].astype(bool).any()  # never fell back to persistence
    assert (pd.to_datetime(gbm["cutoff"], utc=True) >= pd.Timestamp(split, unit="ns", tz="UTC")).all()
    scores = pd.read_csv(outcome.run_dir / "scores.csv")
    assert "gbm" in set(scores["model"])
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    entry = next(m for m in manifest["models"] if m["name"] == "gbm")
    assert entry["versions"] == ["gbm-backtest"] and entry["windows"] > 0

    report = build_report(outcome.run_dir, tmp_path / "report", resamples=30)
    assert "gradient boosting (site-trained)" in report.markdown.read_text()
    metrics = pd.read_csv(tmp_path / "report" / "metrics.csv")
    assert "gbm" in set(metrics["model"])
