"""Run a planned backtest: read the series once, fine-tune on pre-split data (the scheduled job's code),
forecast every cut-off with every model and covariate variant, label regimes, write the run folder and
the forecasts to InfluxDB (tag run=<run id>, variant=<variant>)."""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bess_common.logs import RepeatCounter, get_logger
from bess_common.sample import Sample
from forecaster import finetune as ft
from forecaster import regimes, zoo
from forecaster.backtest import runfolder_writer as rf
from forecaster.backtest.ablation import task_variants, variant_windows
from forecaster.backtest.plan import Plan, finetune_split, iso, pre_split_series
from forecaster.config import ForecasterSettings
from forecaster.drivers import Drivers, with_history
from forecaster.forecast import RunOutcome, forecast_window, levels_of
from forecaster.frame import Forecast, forecast_samples, to_frame
from forecaster.models import ModelSet
from forecaster.progress import Progress
from forecaster.regimes import QuietThreshold, quiet_threshold
from forecaster.rolling import actual_after
from forecaster.run_contract import NO_VARIANT, TARGET_ONLY
from forecaster.scoring import ISSUE_TAIL_S
from forecaster.series import SERIES
from forecaster.standin import STAND_IN_VERSION
from forecaster.store import ForecastStore
from forecaster.windows import NS, grid_times, skip_reason

log = get_logger("forecaster.backtest")


@dataclass(frozen=True)
class Request:
    """What to run besides the plan."""

    run_id: str
    out_dir: Path
    seed: int = 0
    finetune: bool = True
    finetune_steps: int | None = None
    dataset: str = ""
    base_model: str = ""
    stand_in: bool = False
    hold_last_steps: int = 0
    started_s: float | None = None  # time.monotonic() when the command started (the one wall time)


@dataclass(frozen=True)
class Outcome:
    """What a backtest produced."""

    run_dir: Path
    windows: int
    skipped: int
    points_written: int
    manifest: dict[str, Any]


def seed_everything(seed: int) -> None:
    """Deterministic runs: torch, numpy and random seeded."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def sha256_of(directory: Path) -> str:
    """Hash of the adapter weights (every *.safetensors / *.bin file, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.safetensors")) + sorted(directory.glob("*.bin")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def finetune_adapter(
    models: ModelSet, series: dict[str, np.ndarray], plan: Plan, settings: ForecasterSettings, request: Request
) -> dict[str, Any]:
    """LoRA fine-tune (forecaster.finetune, as the scheduled job) on [start, split) only; activate the
    adapter on the resident base; return the manifest's `finetune` entry."""
    cfg = settings.finetune
    if request.finetune_steps is not None:
        cfg = cfg.model_copy(
            update={"num_steps": request.finetune_steps, "eval_steps": min(cfg.eval_steps, request.finetune_steps)}
        )
    settings = settings.model_copy(update={"finetune": cfg})
    pre, pre_start = pre_split_series(series, plan)
    split = finetune_split(plan, cfg.validation_days)
    train, validation = ft.training_inputs(pre, pre_start, plan.task, split, context_steps=cfg.context_steps)
    log.info(
        "backtest_finetune_started", steps=cfg.num_steps, train_to=iso(split.val_start_ns), split=iso(plan.split_ns)
    )
    progress = ft.ProgressCallback()
    adapter_dir = request.out_dir / request.run_id / "adapter"
    seed_everything(request.seed)
    with tempfile.TemporaryDirectory(prefix=".finetune-", dir=request.out_dir) as scratch:
        ft.fit(models.pipeline, train, validation, plan.task, settings, output_dir=Path(scratch), progress=progress)
        shutil.rmtree(adapter_dir, ignore_errors=True)
        shutil.copytree(Path(scratch) / "finetuned-ckpt", adapter_dir)
    version = f"ft-{request.run_id}" + (f"+{STAND_IN_VERSION}" if request.stand_in else "")
    models.set_adapter(version, adapter_dir)
    return {
        "steps": cfg.num_steps,
        "learning_rate": cfg.learning_rate,
        "mode": cfg.mode,
        "context_steps": cfg.context_steps,
        "batch_size_rows": cfg.batch_size_rows,
        "train_range": [iso(split.train_start_ns), iso(split.val_start_ns)],
        "validation_range": [iso(split.val_start_ns), iso(split.gate_start_ns)],
        "validation_series": len(validation),
        "best_eval_loss": ft.finite_or_none(progress.best_eval_loss),
        "adapter_version": version,
        "adapter_sha256": sha256_of(adapter_dir),
        "adapter_dir": str(adapter_dir),
    }


@dataclass
class Tally:
    """What happened to every model over the cut-offs: failures (fell back) and not-available reasons."""

    fell_back: dict[str, dict[str, int]] = field(default_factory=dict)
    not_available: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, into: dict[str, dict[str, int]], found: dict[str, str]) -> None:
        """Count one cut-off's {model: reason}."""
        for model, reason in found.items():
            reasons = into.setdefault(model, {})
            reasons[reason] = reasons.get(reason, 0) + 1


def forecast_cutoff(
    lineup: Sequence[zoo.ForecastModel],
    levels: tuple[float, ...],
    series: dict[str, np.ndarray],
    plan: Plan,
    cutoff: int,
    *,
    drivers: Drivers | None = None,
) -> tuple[list[tuple[str, Forecast]], RunOutcome | None, str | None]:
    """Every model at one cut-off: models taking covariates once per variant, the others once with the target
    only (variant "none"). ([(variant, forecast)], outcome with failures keyed model or model/variant, skip)."""
    task = plan.task
    windows = variant_windows(series, plan.read_start_ns, task, cutoff, drivers)
    reason = skip_reason(windows[TARGET_ONLY], task.min_context_fraction, task.max_last_gap_steps)
    if reason:
        return [], None, reason
    runs = [(v, w, [m for m in lineup if m.takes_covariates]) for v, w in windows.items()]
    runs.append((NO_VARIANT, windows[TARGET_ONLY], [m for m in lineup if not m.takes_covariates]))
    out: list[tuple[str, Forecast]] = []
    failures: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    for variant, window, models in runs:
        if not models:
            continue
        outcome = forecast_window(window, task.target, models, levels)
        suffix = "" if variant == NO_VARIANT else f"/{variant}"
        failures.update({f"{m}{suffix}": e for m, e in outcome.failures.items()})
        unavailable.update({m: e for m, e in outcome.unavailable.items()})
        out.extend((variant, f) for f in outcome.forecasts)
    return out, RunOutcome([f for _v, f in out], failures, unavailable), None


def label(
    frame: pd.DataFrame, series: dict[str, np.ndarray], plan: Plan, threshold_w: float
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Add actual, regime (horizon actuals) and regime_at_issue (last 15 min before the cut-off)."""
    task = plan.task
    target = series[task.target]
    actual = pd.Series(target, index=grid_times(plan.read_start_ns, plan.step_ns, plan.n_steps))
    tail = max(1, ISSUE_TAIL_S // task.resolution_s)
    horizon: dict[int, str] = {}
    issue: dict[int, str] = {}
    for cutoff in frame["cutoff_ns"].unique():
        c = int(cutoff)
        values = actual_after(target, plan.read_start_ns, plan.step_ns, c, task.horizon_steps)
        horizon[c] = regimes.horizon_regime(values, threshold_w)
        idx = plan.index(c)
        issue[c] = regimes.issue_regime(target[max(0, idx - tail) : idx], threshold_w, tail)
    frame = frame.assign(
        actual=frame["ts_ns"].map(actual).astype(float),
        regime=frame["cutoff_ns"].map(horizon),
        regime_at_issue=frame["cutoff_ns"].map(issue),
    )
    return frame, horizon


def with_variant(samples: list[Sample], variant: str) -> list[Sample]:
    """Backtest points carry the variant as a tag, so the variants of one model do not overwrite each other."""
    return [Sample(s.measurement, {**s.tags, "variant": variant}, s.fields, s.ts_ns) for s in samples]


def forecast_all(
    plan: Plan,
    series: dict[str, np.ndarray],
    models: ModelSet | None,
    store: ForecastStore,
    *,
    run_id: str,
    tty: bool | None,
    tally: Tally,
    validation_days: float = 2.0,
    drivers: Drivers | None = None,
) -> tuple[list[tuple[str, Forecast]], dict[str, str], int]:
    """Every cut-off, in order, written to InfluxDB as it is done: (forecasts, skipped, points written)."""
    repeats = RepeatCounter(log)
    progress = Progress(
        "backtest cut-off", len(plan.cutoffs), log, event="backtest_progress", keys=("cutoff", "cutoffs"), tty=tty
    )
    lineup = zoo.lineup(zoo.Resources(models, context_steps=plan.task.context_steps))
    fit_models(lineup, series, plan, validation_days, drivers)
    levels = levels_of(models)
    forecasts: list[tuple[str, Forecast]] = []
    skipped: dict[str, str] = {}
    written = 0
    for i, cutoff in enumerate(plan.cutoffs, 1):
        done, outcome, reason = forecast_cutoff(lineup, levels, series, plan, cutoff, drivers=drivers)
        if reason or outcome is None:
            skipped[iso(cutoff)] = reason or "skipped"
            repeats.hit("skip", "backtest_window_skipped", cutoff=iso(cutoff), reason=reason)
            progress.step(i)
            continue
        tally.add(tally.fell_back, outcome.failures)
        tally.add(tally.not_available, outcome.unavailable)
        for name, error in outcome.failures.items():
            repeats.hit(f"fallback:{name}", "model_fell_back_to_persistence", model=name, error=error[:300])
        for name, why in outcome.unavailable.items():
            repeats.hit(f"unavailable:{name}", "model_not_available", model=name, reason=why[:300])
        samples = [s for v, f in done for s in with_variant(forecast_samples(f, store.site, run_id), v)]
        written += store.write_samples(samples) if samples else 0
        forecasts.extend(done)
        progress.step(i)
    return forecasts, skipped, written


def data_by_regime(series: dict[str, np.ndarray], plan: Plan, threshold_w: float) -> dict[str, Any]:
    """Hours of target data per regime before the split (training) and from it on (evaluation), and each
    regime's share of all those hours (the share of the DATA, not of the scored windows)."""
    target, task = series[plan.task.target], plan.task
    lo, split = plan.index(plan.start_ns), plan.index(plan.split_ns)
    hours = {
        "training": regimes.regime_hours(target[lo:split], task.resolution_s, task.horizon_steps, threshold_w),
        "evaluation": regimes.regime_hours(target[split:], task.resolution_s, task.horizon_steps, threshold_w),
    }
    total = {r: hours["training"][r] + hours["evaluation"][r] for r in regimes.REGIMES}
    return {"regime_hours": hours, "regime_share": regimes.shares(total)}


def training_threshold(series: dict[str, np.ndarray], plan: Plan, settings: ForecasterSettings) -> QuietThreshold:
    """The quiet threshold from the target before the split (the training range), unless overridden."""
    pre, _start = pre_split_series(series, plan)
    return quiet_threshold(pre[plan.task.target], settings.quiet_fraction, settings.quiet_threshold_w)


def fit_models(
    lineup: Sequence[zoo.ForecastModel],
    series: dict[str, np.ndarray],
    plan: Plan,
    validation_days: float,
    drivers: Drivers | None = None,
) -> None:
    """Train every model with the optional fit step on the data strictly before the split, with the
    fine-tune's validation range (the last part before the split) marked."""
    trainable = [m for m in lineup if isinstance(m, zoo.Trainable)]
    if not trainable:
        return
    pre, pre_start = pre_split_series(series, plan)
    val_start = finetune_split(plan, validation_days).val_start_ns
    for model in trainable:
        started = time.monotonic()
        log.info("backtest_model_fit", model=model.name, train_to=iso(val_start), data_to=iso(plan.split_ns))
        model.fit(zoo.FitData(pre, pre_start, plan.task, val_start, drivers))
        log.info("backtest_model_fitted", model=model.name, wall_s=round(time.monotonic() - started, 1))


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


def read_series(store: ForecastStore, plan: Plan) -> dict[str, np.ndarray]:
    """Every series of the task over [read_start, end): one query per series, not per cut-off."""
    keys = [plan.task.target, *plan.task.past_covariates]
    return store.read_grid(keys, plan.read_start_ns, plan.task.resolution_s, plan.n_steps)


def default_run_id(site: str, task: str, split_ns: int, seed: int) -> str:
    """Deterministic run id from what defines the run (re-running overwrites the same folder)."""
    split = datetime.fromtimestamp(split_ns // NS, UTC).strftime("%Y%m%dT%H%MZ")
    return f"bt-{site}-{task}-{split}-s{seed}"
