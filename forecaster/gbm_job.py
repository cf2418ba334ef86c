"""Re-train the site's gradient-boosting model on the fine-tune's schedule and data, gate it, promote it.

Same split as the LoRA fine-tune (forecaster.finetune.make_split with the [forecaster.finetune] days): trained
on the training range, rounds picked on the validation range, gated on the gate range against the active
version (or persistence when none is active) with the same rule (forecaster.finetune.gate_backtest).
Versions live in their own registry beside the adapters: <registry_dir>/gbm/ (same layout, lock, active
pointer, history and pruning as forecaster.registry.Registry).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bess_common.logs import get_logger
from forecaster import finetune as ft
from forecaster import zoo
from forecaster.config import ForecasterSettings
from forecaster.gbm import GbmForecaster, GbmParams, train_gbm
from forecaster.registry import Registry
from forecaster.retrain import RetrainResult, gate_record, land, read_split, retrain_task
from forecaster.store import ForecastStore
from forecaster.zoo.gbm import NAME, SiteGbm

log = get_logger("forecaster.gbm_job")
GBM_REGISTRY = "gbm"


def gbm_registry(settings: ForecasterSettings) -> Registry:
    """The gradient-boosting versions' registry, beside the adapters'."""
    return Registry(Path(settings.registry_dir) / GBM_REGISTRY)


def load_active(registry: Registry) -> tuple[str, GbmForecaster] | None:
    """(version, model) of the active version, or None."""
    active = registry.active()
    if active is None:
        return None
    return active.version, GbmForecaster.load(active.adapter_dir)


def site_gbm(version: str, model: GbmForecaster) -> SiteGbm:
    """The plugin around one trained model."""
    return SiteGbm(zoo.Resources(site_models={NAME: (version, model)}))


def run_gbm_retrain(
    settings: ForecasterSettings,
    store: ForecastStore,
    registry: Registry,
    *,
    at_ns: int | None = None,
    params: GbmParams | None = None,
) -> RetrainResult:
    """Train on the fine-tune's training range, gate against the active version (or persistence), register,
    promote when the gate passes. Holds the registry's lock (RegistryLocked when another re-train runs);
    GbmUnavailable when there is too little data."""
    cfg = settings.finetune
    task = retrain_task(settings)
    started = time.monotonic()
    with registry.lock():
        split, series, drivers = read_split(settings, store, task, time.time_ns() if at_ns is None else at_ns)
        log.info("gbm_retrain_started", task=task.name, data_from=ft.iso(split.train_start_ns), to=ft.iso(split.end_ns))
        model = train_gbm(series, split.train_start_ns, task, split, params, drivers=drivers)
        active = load_active(registry)
        incumbent: zoo.ForecastModel = site_gbm(*active) if active else zoo.lineup(zoo.Resources(), [_reference()])[0]
        decision, scores = ft.gate_backtest(
            site_gbm("candidate", model),
            incumbent,
            levels=model.levels,
            series=series,
            grid_start_ns=split.train_start_ns,
            task=task,
            split=split,
            settings=settings,
            drivers=drivers,
        )
        manifest = {
            "model": NAME,
            "task": task.name,
            "params": asdict(params or GbmParams()),
            "data": {
                "train_from": ft.iso(split.train_start_ns),
                "validation_from": ft.iso(split.val_start_ns),
                "gate_from": ft.iso(split.gate_start_ns),
                "to": ft.iso(split.end_ns),
            },
            "gate": gate_record(decision, scores, cfg.gate_margin, incumbent=active[0] if active else zoo.REFERENCE),
            "train_s": model.meta.get("train_s"),
            "created_at": datetime.now(UTC).isoformat(),
        }
        registry.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="gbm-", dir=registry.root) as scratch:
            model.save(Path(scratch) / "model")
            landed = land(registry, Path(scratch) / "model", manifest, decision, keep=cfg.keep_versions, new_id=_new_id)
    landed.log(log, "gbm_retrain_finished", wall_s=round(time.monotonic() - started, 1))
    return RetrainResult(landed.version, decision.promote, decision.reasons, manifest)


def _new_id() -> str:
    return datetime.now(UTC).strftime("gbm-%Y%m%dT%H%M%SZ")


def _reference() -> type[zoo.ForecastModel]:
    return next(cls for cls in zoo.MODELS if cls.name == zoo.REFERENCE)
