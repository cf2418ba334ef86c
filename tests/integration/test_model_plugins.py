"""A model is a plugin: registering one class (no other file touched) puts it in live forecasts, scores, the
backtest's run folder and the report, in registry order, per covariate variant when it takes covariates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from bess_common.influx import InfluxClient
from forecaster import zoo
from forecaster.backtest.plan import make_plan
from forecaster.backtest.run import Request, read_series, run_backtest
from forecaster.config import FinetuneSettings, ForecasterSettings, ForecastTask
from forecaster.forecast import run_models
from forecaster.frame import to_frame
from forecaster.models import ModelSet, load_pipeline
from forecaster.report import build_report
from forecaster.rolling import window_at
from forecaster.scoring import score
from forecaster.store import ForecastStore
from forecaster.windows import NS, Window
from tests.conftest import fc_synthetic_rows

pytestmark = pytest.mark.integration

START_NS = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
DAY_NS = 86400 * NS
SPLIT_NS = START_NS + 2 * DAY_NS + DAY_NS // 2
END_NS = START_NS + 3 * DAY_NS
TASK = ForecastTask(name="t5m", resolution="5m", context_steps=576, horizon_steps=12, cadence="1h")


class ContextMean:
    """Dummy baseline: the mean of the last hour, spread ±1 std."""

    name: ClassVar[str] = "context_mean"
    label: ClassVar[str] = "context mean"
    kind: ClassVar[zoo.Kind] = zoo.BASELINE
    takes_covariates: ClassVar[bool] = False
    version = "dummy-1"

    def __init__(self, resources: zoo.Resources) -> None:
        del resources

    def predict(self, window: Window, levels: Sequence[float]) -> np.ndarray:
        tail = window.target[-12:]
        tail = tail[np.isfinite(tail)]
        z = np.array([(lv - 0.5) * 2 for lv in levels])
        return (tail.mean() + z * tail.std())[:, None] * np.ones(window.horizon_steps)


class ScaledLast:
    """Dummy learned model taking covariates; `fit` learns a scale from pre-split data only."""

    name: ClassVar[str] = "scaled_last"
    label: ClassVar[str] = "scaled last value"
    kind: ClassVar[zoo.Kind] = zoo.LEARNED
    takes_covariates: ClassVar[bool] = True
    fitted_until: ClassVar[list[int]] = []

    def __init__(self, resources: zoo.Resources) -> None:
        self.scale = 1.0

    @property
    def version(self) -> str:
        return f"scale-{self.scale:.2f}"

    def fit(self, data: zoo.FitData) -> None:
        y = np.asarray(data.series[data.task.target])
        ScaledLast.fitted_until.append(data.grid_start_ns + y.size * data.task.resolution_s * NS)
        self.scale = 0.9

    def predict(self, window: Window, levels: Sequence[float]) -> np.ndarray:
        y = window.target[np.isfinite(window.target)]
        width = 10.0 * (1 + len(window.past))  # differs per covariate variant
        return self.scale * y[-1] + np.array([(lv - 0.5) * width for lv in levels])[:, None] * np.ones(
            window.horizon_steps
        )


@pytest.fixture
def with_dummies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zoo, "MODELS", (*zoo.MODELS, ContextMean, ScaledLast))
    ScaledLast.fitted_until.clear()


def fill(influx: InfluxClient) -> dict[str, np.ndarray]:
    rows = fc_synthetic_rows(START_NS, END_NS, step_s=60)
    for i in range(0, len(rows), 5000):
        influx.write(rows[i : i + 5000])
    n = int((END_NS - START_NS) // (300 * NS))
    return ForecastStore(influx, "shop").read_grid([TASK.target, *TASK.past_covariates], START_NS, 300, n)


@pytest.mark.usefixtures("with_dummies")
def test_when_a_model_is_registered_then_live_forecasts_and_scores_include_it(
    influx: InfluxClient, tiny_chronos_dir: Path
) -> None:
    series = fill(influx)
    models = ModelSet(load_pipeline(str(tiny_chronos_dir), 2), str(tiny_chronos_dir))
    cutoffs = [START_NS + 2 * DAY_NS + k * 3600 * NS for k in range(6)]
    forecasts = []
    for cutoff in cutoffs:
        outcome = run_models(window_at(series, START_NS, TASK, cutoff), TASK.target, models, TASK.context_steps)
        assert not outcome.failures
        forecasts += outcome.forecasts
    assert [f.model for f in forecasts[:5]] == ["base", "persistence", "seasonal_naive", "context_mean", "scaled_last"]
    actual = pd.Series(series[TASK.target], index=START_NS + 300 * NS * np.arange(series[TASK.target].size))
    rows = score(to_frame(forecasts), actual, 100.0, 100.0, 300)
    scored = {(r.model, r.model_version) for r in rows if r.regime == "all" and r.lead_bucket == "all"}
    assert ("context_mean", "dummy-1") in scored and ("scaled_last", "scale-1.00") in scored
    mean_row = next(r for r in rows if r.model == "context_mean" and r.regime == "all" and r.lead_bucket == "all")
    assert mean_row.n_windows == 6 and np.isfinite(mean_row.skill) and mean_row.mae_w > 0


@pytest.mark.usefixtures("with_dummies")
def test_when_a_model_is_registered_then_the_backtest_run_folder_and_report_include_it(
    influx: InfluxClient, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    fill(influx)
    settings = ForecasterSettings(
        base_model=str(tiny_chronos_dir),
        registry_dir=tmp_path / "models",
        tasks=[TASK],
        finetune=FinetuneSettings(task=TASK.name),
    )
    plan = make_plan(TASK, START_NS + DAY_NS, SPLIT_NS, END_NS, every_steps=24, max_cutoffs=4)
    store = ForecastStore(influx, "shop")
    series = read_series(store, plan)
    models = ModelSet(load_pipeline(str(tiny_chronos_dir), 2), str(tiny_chronos_dir))
    request = Request(run_id="bt-plugins", out_dir=tmp_path / "runs", finetune=False)
    outcome = run_backtest(plan, series, models, settings=settings, store=store, request=request, tty=False)

    assert ScaledLast.fitted_until == [SPLIT_NS]  # fit saw the data before the split, nothing after
    frame = pd.read_csv(outcome.run_dir / "forecasts.csv")
    pairs = set(zip(frame["model"], frame["variant"], strict=True))
    assert ("context_mean", "none") in pairs
    assert {("scaled_last", v) for v in ("target_only", "past_covariates", "all_covariates")} <= pairs
    assert not any(m == "context_mean" and v != "none" for m, v in pairs)  # no covariates: forecast once
    scores = pd.read_csv(outcome.run_dir / "scores.csv")
    assert {"context_mean", "scaled_last"} <= set(scores["model"])
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    names = [m["name"] for m in manifest["models"]]
    assert names[-2:] == ["context_mean", "scaled_last"] and names[:2] == ["base", "finetuned"]
    assert manifest["models"][-1]["versions"] == ["scale-0.90"]
    finetuned = next(m for m in manifest["models"] if m["name"] == "finetuned")
    assert finetuned["windows"] == 0 and finetuned["not_available"]  # no adapter: reported, not forecast

    report = build_report(outcome.run_dir, tmp_path / "report", resamples=30)
    text = report.markdown.read_text()
    assert "context mean" in text and "scaled last value" in text
    metrics = pd.read_csv(tmp_path / "report" / "metrics.csv")
    assert {"context_mean", "scaled_last"} <= set(metrics["model"])
