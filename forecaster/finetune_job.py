"""Re-fine-tune the base model with LoRA on the last days of data, gate it against the active version, promote it.

The training maths lives in forecaster.finetune; the split, the gate's record and the register / promote / prune
tail are shared with the gradient-boosting re-train (forecaster.retrain).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bess_common.logs import get_logger
from forecaster import finetune as ft
from forecaster.config import ForecasterSettings, ForecastTask
from forecaster.models import ModelSet
from forecaster.registry import SCRATCH_PREFIX, Registry, new_version_id
from forecaster.retrain import RetrainResult, gate_record, land, read_split, retrain_task
from forecaster.store import ForecastStore
from forecaster.windows import NS

log = get_logger("forecaster.finetune_job")


class FinetuneRefused(RuntimeError):
    """A fine-tune that would register a useless version (too little data); one line saying why."""


def training_data_problem(target: np.ndarray, task: ForecastTask, train_steps: int, context_steps: int) -> str | None:
    """Why the training period cannot teach anything (too few target values), or None."""
    have = int(np.isfinite(target[:train_steps]).sum())
    need = context_steps + task.horizon_steps
    if have < need:
        return (
            f"only {have} of {train_steps} training steps of {task.target} hold data (at least {need} = "
            f"context {context_steps} + horizon {task.horizon_steps} needed); no version registered"
        )
    return None


@dataclass(frozen=True)
class FinetuneResult(RetrainResult):
    """Outcome of one fine-tune, with the fine-tuned pipeline (in eval mode)."""

    tuned: Any = field(default=None, repr=False)


def run_finetune(
    settings: ForecasterSettings,
    store: ForecastStore,
    registry: Registry,
    pipeline: Any,
    base_model: str,
    *,
    at_ns: int | None = None,
    tty: bool | None = None,
) -> FinetuneResult:
    """Fine-tune on the last N days, back-test against the active model (or base), register, gate, promote.

    Holds the registry lock for the whole run (RegistryLocked when another fine-tune is running).
    `pipeline` must be the plain base pipeline (no adapter applied)."""
    cfg = settings.finetune
    task = retrain_task(settings)
    with registry.lock():
        registry.clean_scratch()  # a killed fine-tune's checkpoints (the lock says none is running)
        split, series, drivers = read_split(settings, store, task, time.time_ns() if at_ns is None else at_ns)
        train_steps = int((split.val_start_ns - split.train_start_ns) // (task.resolution_s * NS))
        problem = training_data_problem(series[task.target], task, train_steps, cfg.context_steps)
        if problem:
            raise FinetuneRefused(problem)
        train, validation = ft.training_inputs(
            series, split.train_start_ns, task, split, context_steps=cfg.context_steps
        )
        log.info(
            "finetune_started",
            task=task.name,
            mode=cfg.mode,
            steps=cfg.num_steps,
            data_from=ft.iso(split.train_start_ns),
            data_to=ft.iso(split.end_ns),
            validation=len(validation),
        )
        if not validation:
            log.warning(
                "finetune_without_validation",
                reason="no target data in the validation period",
                effect="the last checkpoint is used, not the best",
            )
        progress = ft.ProgressCallback(tty)
        registry.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=registry.root) as scratch:
            tuned = ft.fit(pipeline, train, validation, task, settings, output_dir=Path(scratch), progress=progress)
            incumbent = ModelSet(pipeline, base_model)
            decision, scores = ft.gate_against_active(
                tuned,
                incumbent,
                registry.active(),
                series,
                split.train_start_ns,
                task=task,
                split=split,
                settings=settings,
                drivers=drivers,
            )
            manifest = ft.build_manifest(
                pipeline, base_model, task, settings, split=split, progress=progress, validation=len(validation)
            )
            manifest["gate"] = gate_record(decision, scores, cfg.gate_margin)
            checkpoint = Path(scratch) / "finetuned-ckpt"
            landed = land(registry, checkpoint, manifest, decision, keep=cfg.keep_versions, new_id=new_version_id)
        landed.log(log, "finetune_finished")
        return FinetuneResult(landed.version, decision.promote, decision.reasons, manifest, tuned)
