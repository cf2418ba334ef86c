"""Run a planned backtest: read the series once, fine-tune on pre-split data (the scheduled job's code),
forecast every cut-off with every model and covariate variant, label regimes, write the run folder and
the forecasts to InfluxDB (tag run=<run id>, variant=<variant>).

The steps live beside it: adapter (fine-tune), cutoffs (forecast every cut-off), labels (regimes),
manifest (manifest.json)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bess_common.logs import get_logger
from forecaster import regimes
from forecaster.backtest import runfolder_writer as rf
from forecaster.backtest.adapter import finetune_adapter, seed_everything
from forecaster.backtest.cutoffs import Tally, forecast_all
from forecaster.backtest.labels import data_by_regime, label, training_threshold
from forecaster.backtest.manifest import build_manifest, models_entry
from forecaster.backtest.plan import Plan, iso
from forecaster.backtest.request import Request
from forecaster.config import ForecasterSettings
from forecaster.drivers import Drivers, with_history
from forecaster.frame import Forecast, to_frame
from forecaster.models import ModelSet
from forecaster.store import ForecastStore
from forecaster.windows import NS, grid_times

log = get_logger("forecaster.backtest")

__all__ = ["Outcome", "Request", "default_run_id", "read_series", "run_backtest"]


@dataclass(frozen=True)
class Outcome:
    """What a backtest produced."""

    run_dir: Path
    windows: int
    skipped: int
    points_written: int
    manifest: dict[str, Any]


def run_backtest(
    plan: Plan,
    series: dict[str, np.ndarray],
    models: ModelSet | None,
    *,
    settings: ForecasterSettings,
    store: ForecastStore,
    request: Request,
    tty: bool | None = None,
    drivers: Drivers | None = None,
) -> Outcome:
    """The whole backtest over already-read gridded series (grid start = plan.read_start_ns) and the known-future
    drivers of the span (forecaster.drivers; each cut-off sees only what was issued at or before it)."""
    started = time.monotonic() if request.started_s is None else request.started_s
    series = with_history(series, drivers, plan.task.known_covariates, plan.read_start_ns, plan.step_ns)
    request.out_dir.mkdir(parents=True, exist_ok=True)
    finetune = finetune_adapter(models, series, plan, settings, request) if request.finetune and models else None
    seed_everything(request.seed)
    tally = Tally()
    forecasts, skipped, written = forecast_all(
        plan,
        series,
        models,
        store,
        run_id=request.run_id,
        tty=tty,
        tally=tally,
        validation_days=settings.finetune.validation_days,
        drivers=drivers,
    )
    frame = _frame(forecasts, request.run_id)
    if frame.empty:
        first = next(iter(skipped.values()), "")
        raise RuntimeError(f"every cut-off was skipped ({len(skipped)}); first reason: {first}")
    threshold = training_threshold(series, plan, settings)
    frame, horizon = label(frame, series, plan, threshold.value_w)
    for cutoff in [c for c, r in horizon.items() if r == regimes.UNKNOWN]:
        skipped[iso(cutoff)] = "no actuals over the horizon (not scored; the forecasts are in InfluxDB)"
        del horizon[cutoff]
    frame = frame[frame["regime"] != regimes.UNKNOWN]
    if frame.empty:
        raise RuntimeError("no cut-off has actuals over its horizon: nothing to score")
    actual = pd.Series(series[plan.task.target], index=grid_times(plan.read_start_ns, plan.step_ns, plan.n_steps))
    scores = rf.score_table(frame, actual, threshold.value_w, settings.wql_floor_w, plan.task.resolution_s)
    manifest = build_manifest(
        plan, series, settings=settings, request=request, finetune=finetune, horizon=horizon, skipped=skipped
    )
    manifest["covariates"]["drivers"] = {
        "plan_snapshots": len(drivers.plans) if drivers else 0,
        "pv_issues": len(drivers.pv) if drivers else 0,
    }
    manifest["quiet_threshold_w"] = threshold.value_w
    manifest["quiet_threshold"] = threshold.manifest()
    manifest["data"].update(data_by_regime(series, plan, threshold.value_w))
    manifest["models"] = models_entry(forecasts, tally)
    manifest["wall_s"] = round(time.monotonic() - started, 1)
    run_dir = request.out_dir / request.run_id
    rf.write_run_folder(run_dir, rf.contract_frame(frame, request.run_id, plan.task.resolution_s), scores, manifest)
    log.info(
        "backtest_finished",
        run=request.run_id,
        windows=len(horizon),
        skipped=len(skipped),
        points=written,
        wall_s=manifest["wall_s"],
    )
    return Outcome(run_dir, len(horizon), len(skipped), written, manifest)


def _frame(forecasts: list[tuple[str, Forecast]], run_id: str) -> pd.DataFrame:
    if not forecasts:
        return pd.DataFrame()
    frame = to_frame([f for _, f in forecasts], run=run_id)
    horizon = [len(f.ts_ns) for _, f in forecasts]
    return frame.assign(variant=np.repeat([v for v, _ in forecasts], horizon))


def read_series(store: ForecastStore, plan: Plan) -> dict[str, np.ndarray]:
    """Every series of the task over [read_start, end): one query per series, not per cut-off."""
    keys = [plan.task.target, *plan.task.past_covariates]
    return store.read_grid(keys, plan.read_start_ns, plan.task.resolution_s, plan.n_steps)


def default_run_id(site: str, task: str, split_ns: int, seed: int) -> str:
    """Deterministic run id from what defines the run (re-running overwrites the same folder)."""
    split = datetime.fromtimestamp(split_ns // NS, UTC).strftime("%Y%m%dT%H%MZ")
    return f"bt-{site}-{task}-{split}-s{seed}"
