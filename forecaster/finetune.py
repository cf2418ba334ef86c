"""Fine-tuning: sample context windows of the site's history, fit LoRA (or full) with validation on held-out
recent days and `load_best_model_at_end`, back-test against the active model, register, gate, promote."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bess_common.logs import get_logger
from forecaster import drivers as known
from forecaster.config import ForecasterSettings, ForecastTask
from forecaster.gate import GateDecision, decide
from forecaster.metrics import mae_by_regime
from forecaster.models import ModelSet
from forecaster.progress import Progress
from forecaster.regimes import quiet_threshold
from forecaster.registry import Registry, Version, new_version_id
from forecaster.report.stats import paired_estimate, resample_counts
from forecaster.rolling import backtest_window_sums, median_forecaster, rolling_cutoffs
from forecaster.windows import DAY_S, NS, grid_times, iso, time_features
from forecaster.zoo.chronos import ChronosBase, ChronosFinetuned, ChronosPipeline
from forecaster.zoo.protocol import ForecastModel, Resources

log = get_logger("forecaster.finetune")
GATE_RESAMPLES = 1000


@dataclass(frozen=True)
class Split:
    """Grid-aligned boundaries: train [train_start, val_start), validation [.., gate_start), gate [.., end)."""

    train_start_ns: int
    val_start_ns: int
    gate_start_ns: int
    end_ns: int


def make_split(end_ns: int, step_s: int, train_days: float, validation_days: float, gate_days: float) -> Split:
    """Boundaries counted back from `end` (aligned down to the grid step)."""
    step_ns = step_s * NS

    def days(d: float) -> int:
        return round(d * DAY_S / step_s) * step_ns

    end = end_ns - end_ns % step_ns
    gate = end - days(gate_days)
    val = gate - days(validation_days)
    return Split(val - days(train_days), val, gate, end)


def _series_input(
    series: Mapping[str, np.ndarray], task: ForecastTask, *, start_ns: int, step_ns: int, lo: int, hi: int
) -> dict[str, Any]:
    """One training/validation series over grid indices [lo, hi): known covariates marked future=None. Driver
    covariates come from their history in `series` (each step as known at its start; forecaster.drivers)."""
    past = {k: np.asarray(series[k][lo:hi], dtype=float) for k in task.past_covariates}
    ts = grid_times(start_ns + lo * step_ns, step_ns, hi - lo)
    features = time_features(ts)
    drivers = [k for k in task.known_covariates if k in known.DRIVER_FEATURES]
    features.update({k: np.asarray(series[k][lo:hi], dtype=float) for k in drivers if k in series})
    features.update(known.values(None, [k for k in drivers if k not in series], ts, step_ns, ts))
    for key in task.known_covariates:
        past[key] = features[key]
    return {
        "target": np.asarray(series[task.target][lo:hi], dtype=float),
        "past_covariates": past,
        "future_covariates": {k: None for k in task.known_covariates},
    }


def training_inputs(
    series: Mapping[str, np.ndarray],
    grid_start_ns: int,
    task: ForecastTask,
    split: Split,
    *,
    context_steps: int,
    n_validation: int = 8,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation) inputs for `fit`. Validation series end inside the validation period; fit scores
    the last horizon of each, so no validation target is ever trained on."""
    step_ns = task.resolution_s * NS
    val_lo = (split.val_start_ns - grid_start_ns) // step_ns
    gate_lo = (split.gate_start_ns - grid_start_ns) // step_ns
    train = [_series_input(series, task, start_ns=grid_start_ns, step_ns=step_ns, lo=0, hi=val_lo)]
    h = task.horizon_steps
    ends = sorted({int(e) for e in np.linspace(val_lo + h, gate_lo, n_validation)})
    validation = [
        _series_input(series, task, start_ns=grid_start_ns, step_ns=step_ns, lo=max(0, e - h - context_steps), hi=e)
        for e in ends
        if np.isfinite(series[task.target][e - h : e]).any()
    ]
    return train, validation


class ProgressCallback:
    """HF TrainerCallback-compatible: steps, loss and ETA (forecaster.progress), and the best eval loss."""

    def __init__(self, tty: bool | None = None) -> None:
        self.progress = Progress("fine-tune step", 0, log, event="finetune_progress", keys=("step", "steps"), tty=tty)
        self.best_eval_loss = float("nan")

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kw: Any) -> None:
        """Report the latest loss with steps and ETA."""
        logs = logs or {}
        step, total = int(state.global_step), int(state.max_steps or 0)
        if "eval_loss" in logs:
            loss = float(logs["eval_loss"])
            if not loss >= self.best_eval_loss:
                self.best_eval_loss = loss
            log.info("finetune_eval", step=step, steps=total, eval_loss=round(loss, 4))
        elif "loss" in logs:
            self.progress.step(step, total, loss=round(float(logs["loss"]), 4))

    def on_train_end(self, *a: Any, **k: Any) -> None:
        """End the TTY progress line."""
        if self.progress.tenth < 10:
            self.progress.end_line()


def _as_callback(progress: ProgressCallback) -> Any:
    from transformers import TrainerCallback

    class _Callback(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            progress.on_log(args, state, control, logs)

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            progress.on_train_end()

    return _Callback()


def fit(
    pipeline: Any,
    train: list[dict[str, Any]],
    validation: list[dict[str, Any]],
    task: ForecastTask,
    settings: ForecasterSettings,
    *,
    output_dir: Path,
    progress: ProgressCallback,
) -> Any:
    """Run Chronos-2 `fit` and return the fine-tuned pipeline in eval mode."""
    cfg = settings.finetune
    rows = 1 + len(task.past_covariates) + len(task.known_covariates)
    ft = pipeline.fit(
        train,
        prediction_length=task.horizon_steps,
        validation_inputs=validation or None,
        finetune_mode=cfg.mode,
        context_length=cfg.context_steps,
        learning_rate=cfg.learning_rate,
        num_steps=cfg.num_steps,
        batch_size=max(cfg.batch_size_rows, rows),
        output_dir=str(output_dir),
        min_past=min(task.horizon_steps, cfg.context_steps),
        callbacks=[_as_callback(progress)],
        remove_printer_callback=True,
        disable_tqdm=True,
        eval_steps=cfg.eval_steps,
        save_steps=cfg.eval_steps,
        logging_steps=max(1, min(10, cfg.eval_steps)),
        use_cpu=True,
    )
    ft.model.eval()  # fit() may hand back a model in train mode (dropout on)
    return ft


def gate_backtest(
    candidate: ForecastModel,
    incumbent: ForecastModel,
    *,
    levels: tuple[float, ...],
    series: Mapping[str, np.ndarray],
    grid_start_ns: int,
    task: ForecastTask,
    split: Split,
    settings: ForecasterSettings,
    drivers: known.Drivers | None = None,
) -> tuple[GateDecision, dict[str, Any]]:
    """Rolling back-test of candidate vs incumbent over the gate period; the decision and the scores.
    Both models forecast through the same adapter (protocol predict, monotone quantiles, their median)."""
    step_ns = task.resolution_s * NS
    cutoffs = rolling_cutoffs(
        split.gate_start_ns, split.end_ns, task.horizon_steps * step_ns, settings.finetune.gate_windows, step_ns
    )
    gate_index = int((split.gate_start_ns - grid_start_ns) // step_ns)
    training = np.asarray(series[task.target][: max(0, gate_index)], dtype=float)
    threshold_w = quiet_threshold(training, settings.quiet_fraction, settings.quiet_threshold_w).value_w
    cand_sums, inc_sums = (
        backtest_window_sums(
            median_forecaster(m, levels),
            series,
            grid_start_ns,
            task,
            cutoffs=cutoffs,
            threshold_w=threshold_w,
            drivers=drivers,
        )
        for m in (candidate, incumbent)
    )
    cand, inc = mae_by_regime(cand_sums), mae_by_regime(inc_sums)
    windows = {k: len(v) for k, v in cand_sums.items()}
    change = {k: mae_change_w(inc_sums[k], cand_sums[k], k) for k in cand_sums if k in inc_sums}
    cfg = settings.finetune
    decision = decide(
        cand,
        inc,
        cfg.gate_margin,
        windows=windows,
        min_regime_windows=cfg.gate_min_regime_windows,
        quiet_threshold_w=threshold_w,
        worse_low_w={k: v[1] for k, v in change.items()},
    )
    scores = {
        "candidate_mae_w": cand,
        "incumbent_mae_w": inc,
        "windows": windows,
        "mae_change_w": {k: [finite_or_none(x) for x in v] for k, v in change.items()},
        "min_regime_windows": cfg.gate_min_regime_windows,
        "cutoffs": len(cutoffs),
        "quiet_threshold_w": threshold_w,
    }
    return decision, scores


def mae_change_w(incumbent: np.ndarray, candidate: np.ndarray, regime: str) -> tuple[float, float, float]:
    """Candidate - incumbent MAE (W) over the same windows and its 95 % interval (paired window bootstrap,
    1000 resamples, fixed seed: the gate decides the same way twice); NaN bounds below two windows."""
    counts = resample_counts(len(incumbent), GATE_RESAMPLES, 0, f"gate:{regime}")
    diff = paired_estimate(incumbent, candidate, counts, "mae").diff
    return diff.value, diff.low, diff.high


def base_revision(pipeline: Any) -> str:
    """The base checkpoint's revision (hub commit hash) or its config name/path."""
    config = pipeline.model.config
    return str(getattr(config, "_commit_hash", None) or getattr(config, "_name_or_path", "") or "unknown")


def register(
    registry: Registry, ft_dir: Path, manifest: dict[str, Any], new_id: Callable[[], str] = new_version_id
) -> str:
    """Copy the saved checkpoint into the registry as a new version under a fresh id from `new_id` (waiting out
    a clash within the same second); returns its id."""
    version = new_id()
    while (registry.versions_dir / version).exists():
        time.sleep(1)
        version = new_id()
    registry.add(version, ft_dir, manifest)
    return version


def gate_against_active(
    tuned: Any,
    incumbent: ModelSet,
    active: Version | None,
    series: Mapping[str, np.ndarray],
    grid_start_ns: int,
    *,
    task: ForecastTask,
    split: Split,
    settings: ForecasterSettings,
    drivers: known.Drivers | None = None,
) -> tuple[GateDecision, dict[str, Any]]:
    """Back-test the fine-tuned pipeline against the active version (or the base when none is active), both
    at the task's context as the forecasts will use them (not the shorter training context).
    `incumbent` wraps the plain base pipeline; it is left without an adapter afterwards."""
    context_steps = task.context_steps
    resources = Resources(incumbent, context_steps=context_steps)
    incumbent_model = ChronosFinetuned(resources) if active is not None else ChronosBase(resources)
    candidate = ChronosPipeline(tuned, "candidate", context_steps)
    try:
        if active is not None:
            incumbent.set_adapter(active.version, active.adapter_dir)
        decision, scores = gate_backtest(
            candidate,
            incumbent_model,
            levels=incumbent.levels,
            series=series,
            grid_start_ns=grid_start_ns,
            task=task,
            split=split,
            settings=settings,
            drivers=drivers,
        )
    finally:
        incumbent.set_adapter(None, None)  # leave the base pipeline clean
    return decision, {**scores, "incumbent": active.version if active else "base", "context_steps": context_steps}


def build_manifest(
    pipeline: Any,
    base_model: str,
    task: ForecastTask,
    settings: ForecasterSettings,
    *,
    split: Split,
    progress: ProgressCallback,
    validation: int,
) -> dict[str, Any]:
    """What a version records: base and revision, data ranges, training settings, validation score."""
    cfg = settings.finetune
    return {
        "base_model": base_model,
        "base_revision": base_revision(pipeline),
        "mode": cfg.mode,
        "task": task.name,
        "resolution": task.resolution,
        "horizon_steps": task.horizon_steps,
        "context_steps": cfg.context_steps,
        "num_steps": cfg.num_steps,
        "learning_rate": cfg.learning_rate,
        "batch_size_rows": cfg.batch_size_rows,
        "data": {
            "train_from": iso(split.train_start_ns),
            "validation_from": iso(split.val_start_ns),
            "gate_from": iso(split.gate_start_ns),
            "to": iso(split.end_ns),
        },
        "validation": {"best_eval_loss": finite_or_none(progress.best_eval_loss), "series": validation},
        "created_at": datetime.now(UTC).isoformat(),
    }


def finite_or_none(value: float) -> float | None:
    """JSON-safe: NaN/inf become null."""
    return value if math.isfinite(value) else None
