"""The backtest's fine-tune step: LoRA on pre-split data with the scheduled job's code (forecaster.finetune),
seeded, the adapter copied into the run folder and activated on the resident base."""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bess_common.logs import get_logger
from forecaster import finetune as ft
from forecaster.backtest.plan import Plan, finetune_split, iso, pre_split_series
from forecaster.backtest.request import Request
from forecaster.config import ForecasterSettings
from forecaster.models import ModelSet
from forecaster.standin import STAND_IN_VERSION

log = get_logger("forecaster.backtest")


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
