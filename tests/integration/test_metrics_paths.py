"""One metrics module: the same forecasts scored by live scoring (forecast_score in InfluxDB), the backtest's
scores.csv, the report and the promotion gate give the same numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bess_common.influx import InfluxClient
from forecaster.backtest.plan import make_plan
from forecaster.backtest.run import Request, read_series, run_backtest
from forecaster.config import FinetuneSettings, ForecasterSettings, ForecastTask
from forecaster.jobs import ForecastService
from forecaster.metrics import mae_by_regime
from forecaster.models import ModelSet, load_pipeline
from forecaster.registry import Registry
from forecaster.report.runfolder import load_run
from forecaster.report.tables import build_tables
from forecaster.rolling import backtest_window_sums, median_forecaster
from forecaster.store import ForecastStore
from forecaster.windows import NS
from forecaster.zoo import Resources
from forecaster.zoo.chronos import ChronosBase
from tests.conftest import fc_synthetic_rows

pytestmark = pytest.mark.integration

START_NS = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
DAY_NS = 86400 * NS
SPLIT_NS = START_NS + 2 * DAY_NS
END_NS = START_NS + 3 * DAY_NS
TASK = ForecastTask(name="t5m", resolution="5m", context_steps=400, horizon_steps=12, cadence="1h")


def test_when_one_run_is_scored_by_every_path_then_the_numbers_agree(
    influx: InfluxClient, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    rows = fc_synthetic_rows(START_NS, END_NS, step_s=60)
    for i in range(0, len(rows), 5000):
        influx.write(rows[i : i + 5000])
    settings = ForecasterSettings(
        base_model=str(tiny_chronos_dir),
        registry_dir=tmp_path / "models",
        tasks=[TASK],
        finetune=FinetuneSettings(task=TASK.name),
        score_period="2d",
        wql_floor_w=100.0,
        quiet_threshold_w=100.0,
    )
    store = ForecastStore(influx, "shop")
    models = ModelSet(load_pipeline(str(tiny_chronos_dir), 2), str(tiny_chronos_dir))
    plan = make_plan(TASK, START_NS + DAY_NS, SPLIT_NS, END_NS, every_steps=36, max_cutoffs=8)

    # backtest: scores.csv, and the run folder the report reads
    series = read_series(store, plan)
    request = Request(run_id="bt-paths", out_dir=tmp_path / "runs", finetune=False)
    outcome = run_backtest(plan, series, models, settings=settings, store=store, request=request, tty=False)
    scores = pd.read_csv(outcome.run_dir / "scores.csv")
    backtest = scores[
        (scores["model"] == "base")
        & (scores["variant"] == "all_covariates")
        & (scores["regime_by"] == "horizon")
        & (scores["lead_bucket"] == "all")
    ].set_index("regime")

    # live: the service forecasts the same cut-offs with the task's covariates, then scores them
    service = ForecastService(settings, "shop", store, Registry(settings.registry_dir), models)
    for cutoff in plan.cutoffs:
        service.forecast(TASK, at_ns=cutoff)
    assert service.score(TASK, end_ns=END_NS) > 0
    stored = influx.query(
        'SELECT * FROM "forecast_score" WHERE "run" = \'live\' AND "model" = \'base\' '
        'AND "regime_by" = \'horizon\' AND "lead_bucket" = \'all\' GROUP BY "regime"'
    )
    live = {s.tags["regime"]: s.rows()[0] for s in stored}

    # report
    run = load_run(outcome.run_dir)
    tables = build_tables(run, resamples=20)

    # gate
    gate = mae_by_regime(
        backtest_window_sums(
            median_forecaster(ChronosBase(Resources(models, context_steps=TASK.context_steps)), models.levels),
            series,
            plan.read_start_ns,
            TASK,
            cutoffs=plan.cutoffs,
            threshold_w=100.0,
        )
    )

    regimes = set(backtest.index)
    assert "all" in regimes and len(regimes) >= 2
    assert set(live) == regimes == set(gate)
    for regime in regimes:
        row = tables.row(regime, "base", "all_covariates")
        assert row is not None
        expected = backtest.loc[regime]
        for name, column, report_value in (
            ("mae", "mae_w", row.mae.value),
            ("rmse", "rmse_w", row.rmse.value),
            ("wql", "wql", row.wql.value),
            ("coverage", "coverage_80", row.coverage80.value),
            ("skill", "skill", row.skill.value),
        ):
            value = float(expected[column])
            assert np.isfinite(value), (regime, name)
            assert live[regime][column] == pytest.approx(value, rel=1e-9), (regime, name, "live")
            assert report_value == pytest.approx(value, rel=1e-6), (regime, name, "report")
        assert gate[regime] == pytest.approx(float(expected["mae_w"]), rel=1e-6), (regime, "gate")
        assert int(expected["n_windows"]) == row.n_windows == int(live[regime]["n_windows"])
