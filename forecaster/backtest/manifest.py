"""A backtest's manifest.json: the report's required keys plus what makes the run reproducible, and the
`models` entry (every registered model with its versions, windows, fallbacks and not-available reasons)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from forecaster import zoo
from forecaster.backtest import runfolder_writer as rf
from forecaster.backtest.ablation import task_variants
from forecaster.backtest.cutoffs import Tally
from forecaster.backtest.plan import Plan, iso
from forecaster.backtest.request import Request
from forecaster.config import ForecasterSettings
from forecaster.frame import Forecast
from forecaster.run_contract import NO_VARIANT
from forecaster.series import SERIES


def build_manifest(
    plan: Plan,
    series: dict[str, np.ndarray],
    *,
    settings: ForecasterSettings,
    request: Request,
    finetune: dict[str, Any] | None,
    horizon: dict[int, str],
    skipped: dict[str, str],
) -> dict[str, Any]:
    """manifest.json: the report's required keys plus what makes the run reproducible."""
    task = plan.task
    lo, hi = plan.index(plan.start_ns), plan.n_steps
    target = series[task.target][lo:hi]
    keys = [task.target, *task.past_covariates]
    return {
        "run_id": request.run_id,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "task": task.name,
        "target": task.target,
        "unit": "W",
        "resolution": task.resolution,
        "horizon_steps": task.horizon_steps,
        "context_steps": task.context_steps,
        "start": iso(plan.start_ns),
        "split": iso(plan.split_ns),
        "end": iso(plan.end_ns),
        "seed": request.seed,
        "base_model": request.base_model,
        "base_model_is_stand_in": request.stand_in,
        "finetune": finetune,
        "data": {
            "series": {k: {"measurement": SERIES[k].measurement, "field": SERIES[k].field} for k in keys},
            "target_buckets": int(target.size),
            "target_buckets_with_data": int(np.isfinite(target).sum()),
            "gaps": rf.gaps(target, plan.start_ns, plan.step_ns, max(2, task.max_last_gap_steps + 1)),
            "window_share": rf.regime_share(horizon),
            "dataset": request.dataset,
        },
        "wql_floor_w": settings.wql_floor_w,
        "hold_last_steps": request.hold_last_steps,
        "cutoffs": {"planned": len(plan.cutoffs), "every_steps": plan.every_steps, "skipped": skipped},
        "variants": [*task_variants(task), NO_VARIANT],
        "covariates": {"past": list(task.past_covariates), "known_future": list(task.known_covariates)},
    }


def models_entry(forecasts: list[tuple[str, Forecast]], tally: Tally) -> list[dict[str, Any]]:
    """manifest.json `models`: every registered model in order, with its versions, the windows it forecast,
    and the reasons it fell back or was not available (with counts)."""
    entries = []
    for cls in zoo.MODELS:
        mine = [f for _v, f in forecasts if f.model == cls.name]
        entries.append(
            {
                **zoo.describe(cls),
                "versions": sorted({f.model_version for f in mine}),
                "windows": len({f.cutoff_ns for f in mine}),
                "fell_back": {k: v for k, v in tally.fell_back.items() if k.split("/")[0] == cls.name},
                "not_available": tally.not_available.get(cls.name, {}),
            }
        )
    return entries
