"""What the LoRA fine-tune and the gradient-boosting re-train share: the split's data, the gate's record in the
manifest, and the tail (register under a fresh version id, promote when the gate passed, prune old versions).

Both run holding their registry's lock; the training and the gate itself differ and live with each job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecaster import finetune as ft
from forecaster.config import ForecasterSettings, ForecastTask
from forecaster.drivers import Drivers, with_history
from forecaster.gate import GateDecision
from forecaster.registry import Registry
from forecaster.store import ForecastStore, read_task_drivers
from forecaster.windows import NS


def retrain_task(settings: ForecasterSettings) -> ForecastTask:
    """The task [forecaster.finetune] re-trains for."""
    return next(t for t in settings.tasks if t.name == settings.finetune.task)


def read_split(
    settings: ForecasterSettings, store: ForecastStore, task: ForecastTask, end_ns: int
) -> tuple[ft.Split, dict[str, np.ndarray], Drivers | None]:
    """The train / validation / gate split ending at `end_ns` ([forecaster.finetune] days); the target, the past
    covariates and the history of the task's driver covariates over all of it, on the task's grid; the drivers
    themselves (None when the task uses none)."""
    cfg = settings.finetune
    split = ft.make_split(end_ns, task.resolution_s, cfg.train_days, cfg.validation_days, cfg.gate_days)
    n = int((split.end_ns - split.train_start_ns) // (task.resolution_s * NS))
    series = store.read_grid([task.target, *task.past_covariates], split.train_start_ns, task.resolution_s, n)
    drivers = read_task_drivers(store, settings, task, split.train_start_ns, split.end_ns)
    series = with_history(series, drivers, task.known_covariates, split.train_start_ns, task.resolution_s * NS)
    return split, series, drivers


def gate_record(decision: GateDecision, scores: dict[str, Any], margin: float, **extra: Any) -> dict[str, Any]:
    """The manifest's "gate" entry: the back-test's scores, the decision and its reasons, the margin."""
    return {**scores, **extra, "promote": decision.promote, "reasons": list(decision.reasons), "margin": margin}


@dataclass(frozen=True)
class Landed:
    """Where a re-train's candidate ended up."""

    version: str
    promoted: bool
    reasons: tuple[str, ...]
    pruned: list[str]

    def log(self, logger: Any, event: str, **fields: Any) -> None:
        """One line at the end of a re-train: the version, whether it was promoted and why, what was pruned."""
        reasons = list(self.reasons)
        logger.info(event, version=self.version, promoted=self.promoted, reasons=reasons, pruned=self.pruned, **fields)


@dataclass(frozen=True)
class RetrainResult:
    """Outcome of one re-train: the version registered, whether it was promoted and why, its manifest."""

    version: str
    promoted: bool
    reasons: tuple[str, ...]
    manifest: dict[str, Any]


def land(
    registry: Registry,
    src: Path,
    manifest: dict[str, Any],
    decision: GateDecision,
    *,
    keep: int,
    new_id: Callable[[], str],
) -> Landed:
    """Register the saved candidate under a fresh id, make it active when the gate passed, and delete all but
    the last `keep` versions."""
    version = ft.register(registry, src, manifest, new_id)
    if decision.promote:
        registry.set_active(version)
    return Landed(version, decision.promote, decision.reasons, registry.prune(keep))
