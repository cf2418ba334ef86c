"""The GX's plan and the PV forecast are used without hindsight: everything issued after a cut-off is overwritten
(and more is added) in a real InfluxDB, and no forecast for that cut-off changes, in the backtest (every model
and variant, the site-trained model fitted on the plan) and live; a later cut-off does see the change."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bess_common.influx import InfluxClient
from forecaster.backtest.inputs import read_plan_drivers
from forecaster.backtest.plan import Plan, make_plan
from forecaster.backtest.run import Request, read_series, run_backtest
from forecaster.config import FinetuneSettings, ForecasterSettings, ForecastTask
from forecaster.drivers import with_history
from forecaster.finetune import Split
from forecaster.gbm import GbmParams, train_gbm
from forecaster.gbm_job import gbm_registry
from forecaster.jobs import ForecastService
from forecaster.models import ModelSet, load_pipeline
from forecaster.registry import Registry
from forecaster.store import ForecastStore
from tests.integration.planfeed import DAY_NS, H_NS, NS, rewrite_after, write_site

pytestmark = pytest.mark.integration

START_NS = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
DAYS = 6
TASK = ForecastTask(
    name="t5m",
    resolution="5m",
    context_steps=288,
    horizon_steps=24,
    cadence="1h",
    known_covariates=["tod_sin", "tod_cos", "plan_target_soc_pct", "plan_charge_active", "pv_forecast_w"],
)
PARAMS = GbmParams(max_rounds=60, min_rounds=20, stride_steps=3)


def settings_for(tmp_path: Path) -> ForecasterSettings:
    return ForecasterSettings(
        base_model=str(tmp_path / "no-such-model"),
        registry_dir=tmp_path / "models",
        tasks=[TASK],
        finetune=FinetuneSettings(task=TASK.name, validation_days=0.5),
    )


def backtest(
    store: ForecastStore, plan: Plan, settings: ForecasterSettings, models: ModelSet, out: Path
) -> pd.DataFrame:
    request = Request(run_id="bt", out_dir=out, finetune=False)
    drivers = read_plan_drivers(store, plan, settings)
    outcome = run_backtest(plan, read_series(store, plan), models, settings=settings, store=store, request=request,
                           drivers=drivers)  # fmt: skip
    frame = pd.read_csv(outcome.run_dir / "forecasts.csv")
    return frame.drop(columns=["actual", "regime", "regime_at_issue"])  # forecasts only: actuals are not issued


def test_nothing_issued_after_a_cutoff_changes_its_forecasts(
    influx: InfluxClient, tmp_path: Path, tiny_chronos_dir: Path
) -> None:
    models = ModelSet(load_pipeline(str(tiny_chronos_dir), 1), str(tiny_chronos_dir))  # Chronos-2 reads every step
    plans = write_site(influx, START_NS, DAYS)
    store = ForecastStore(influx, "shop")
    settings = settings_for(tmp_path)
    plan = make_plan(TASK, START_NS, START_NS + 4 * DAY_NS, START_NS + DAYS * DAY_NS, every_steps=36, max_cutoffs=6)
    cutoff = plan.cutoffs[2]

    # live: the site-trained model, trained on the plan, active and serving
    split = Split(START_NS, START_NS + 3 * DAY_NS, START_NS + 4 * DAY_NS, START_NS + 4 * DAY_NS)
    n = int(4 * DAY_NS // (TASK.resolution_s * NS))
    drivers = store.read_drivers(START_NS, split.end_ns)
    series = with_history(store.read_grid([TASK.target, *TASK.past_covariates], START_NS, TASK.resolution_s, n),
                          drivers, TASK.known_covariates, START_NS, TASK.resolution_s * NS)  # fmt: skip
    model = train_gbm(series, START_NS, TASK, split, PARAMS, drivers=drivers)
    registry = gbm_registry(settings)
    model.save(tmp_path / "gbm-model")
    registry.add("gbm-test", tmp_path / "gbm-model", {"model": "gbm"})
    registry.set_active("gbm-test")
    service = ForecastService(settings, "shop", store, Registry(settings.registry_dir), None)
    later = cutoff + 2 * H_NS
    for at in (cutoff, later):
        assert not (service.forecast(TASK, at_ns=at, run="before").failures or {}).get("gbm")

    before = backtest(store, plan, settings, models, tmp_path / "a")
    for name in ("gbm", "base"):
        rows = before[(before["model"] == name) & (before["variant"] == "plan_forecast")]
        assert rows["cutoff"].nunique() == len(plan.cutoffs) and not rows["fallback"].any()

    rewrite_after(influx, cutoff, plans, seed=7)
    after = backtest(store, plan, settings, models, tmp_path / "b")
    for at in (cutoff, later):
        service.forecast(TASK, at_ns=at, run="after")

    cut = pd.Timestamp(cutoff, unit="ns", tz="UTC")
    known = pd.to_datetime(before["cutoff"], utc=True) <= cut
    assert known.sum() > 0 and (~known).sum() > 0
    pd.testing.assert_frame_equal(before[known].reset_index(drop=True), after[known].reset_index(drop=True))
    changed = after[~known].reset_index(drop=True)["median"] != before[~known].reset_index(drop=True)["median"]
    assert changed.any()  # the later cut-offs did see the new plan: the drivers reach the forecasts

    live = {
        run: store.read_forecasts(TASK.name, cutoff, later + 3 * H_NS, run).query("model == 'gbm'")
        for run in ("before", "after")
    }
    at_cut = {run: f[f["cutoff_ns"] == cutoff].sort_values("ts_ns")["median"].tolist() for run, f in live.items()}
    assert len(at_cut["before"]) == TASK.horizon_steps and at_cut["before"] == at_cut["after"]
    at_later = {run: f[f["cutoff_ns"] == later].sort_values("ts_ns")["median"].tolist() for run, f in live.items()}
    assert at_later["before"] != at_later["after"]  # live sees what was issued by its own cut-off
