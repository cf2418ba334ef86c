"""The service's jobs: forecast one task at its cut-off, score a period, re-fine-tune with gating.

I/O arrives through the constructor (store, registry, resident models); the maths lives in the pure modules.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bess_common.errors import RejectedError, RetryableError
from bess_common.logs import RepeatCounter, get_logger
from forecaster import finetune as ft
from forecaster.config import ForecasterSettings, ForecastTask
from forecaster.forecast import run_models
from forecaster.frame import forecast_samples
from forecaster.gbm_job import gbm_registry, load_active
from forecaster.models import BASE, ModelSet
from forecaster.regimes import quiet_threshold
from forecaster.registry import Registry
from forecaster.scoring import ISSUE_TAIL_S, score, score_samples
from forecaster.store import ForecastStore
from forecaster.windows import NS, build_window, duration_ns, floor_time, skip_reason
from forecaster.zoo.gbm import NAME as GBM_NAME

log = get_logger("forecaster.jobs")


def now_ns() -> int:
    """Wall-clock UTC now in ns."""
    return time.time_ns()


def task_cutoff(task: ForecastTask, at_ns: int) -> int:
    """The cut-off a run at `at_ns` forecasts from: aligned down to the cadence (and so to the grid)."""
    return floor_time(floor_time(at_ns, task.cadence_s), task.resolution_s)


@dataclass(frozen=True)
class ForecastResult:
    """What one forecast run did."""

    task: str
    cutoff_ns: int
    written: int
    skipped: str = ""
    failures: dict[str, str] | None = None


class ForecastService:
    """Forecast and score jobs over one store, registry and (optional) resident ModelSet."""

    def __init__(
        self,
        settings: ForecasterSettings,
        site: str,
        store: ForecastStore,
        registry: Registry,
        models: ModelSet | None,
        *,
        base_error: str = "",
    ) -> None:
        self.settings = settings
        self.site = site
        self.store = store
        self.registry = registry
        self.models = models
        self.base_error = base_error
        self.repeats = RepeatCounter(log)
        self.gbm_registry = gbm_registry(settings)
        self.site_models: dict[str, tuple[str, Any]] = {}

    def task(self, name: str) -> ForecastTask:
        """Task by name; KeyError when unknown."""
        for task in self.settings.tasks:
            if task.name == name:
                return task
        raise KeyError(name)

    def refresh_adapter(self) -> None:
        """Follow the registry's active pointer (a newly promoted version is picked up without restart)."""
        if self.models is None:
            return
        active = self.registry.active()
        version = active.version if active else None
        if version != self.models.adapter_version:
            try:
                self.models.set_adapter(version, active.adapter_dir if active else None)
                log.info("adapter_active", version=version or "none (base only)")
            except Exception as exc:
                self.repeats.hit("adapter_load", "adapter_load_failed", version=version, error=str(exc))

    def refresh_site_models(self) -> None:
        """Follow the gradient-boosting registry's active pointer (loaded once per version)."""
        active = self.gbm_registry.active()
        version = active.version if active else None
        current = self.site_models.get(GBM_NAME)
        if version == (current[0] if current else None):
            return
        try:
            loaded = load_active(self.gbm_registry)
        except Exception as exc:
            self.repeats.hit("gbm_load", "gbm_load_failed", version=version, error=str(exc))
            return
        if loaded is None:
            self.site_models.pop(GBM_NAME, None)
        else:
            self.site_models[GBM_NAME] = loaded
        log.info("gbm_active", version=version or "none")

    def forecast(self, task: ForecastTask, at_ns: int | None = None, run: str = "live") -> ForecastResult:
        """Forecast one task at the cut-off for `at_ns` with every model and write the result."""
        self.refresh_adapter()
        self.refresh_site_models()
        cutoff = task_cutoff(task, now_ns() if at_ns is None else at_ns)
        step_s = task.resolution_s
        keys = [task.target, *task.past_covariates]
        context = self.store.read_grid(keys, cutoff - task.context_steps * step_s * NS, step_s, task.context_steps)
        window = build_window(
            task.name,
            cutoff,
            step_s * NS,
            context,
            target=task.target,
            past_covariates=task.past_covariates,
            known_covariates=task.known_covariates,
            horizon_steps=task.horizon_steps,
        )
        reason = skip_reason(window, task.min_context_fraction, task.max_last_gap_steps)
        if reason:
            self.repeats.hit(f"skip:{task.name}", "forecast_skipped", task=task.name, reason=reason)
            return ForecastResult(task.name, cutoff, 0, skipped=reason)
        outcome = run_models(
            window, task.target, self.models, task.context_steps, self.base_error, site_models=self.site_models
        )
        for model, error in outcome.failures.items():
            if self.models is None and model == BASE:
                continue  # the base model's absence was reported once, at start-up
            self.repeats.hit(
                f"fallback:{task.name}:{model}",
                "model_fell_back_to_persistence",
                task=task.name,
                model=model,
                error=error[:300],
            )
        samples = [s for f in outcome.forecasts for s in forecast_samples(f, self.site, run)]
        written = self.store.write_samples(samples)
        log.debug("forecast_written", task=task.name, cutoff=ft.iso(cutoff), points=written)
        return ForecastResult(task.name, cutoff, written, failures=outcome.failures)

    def score(self, task: ForecastTask, end_ns: int | None = None, run: str = "live") -> int:
        """Score forecasts whose horizon ended in (end − score_period, end]; write forecast_score at `end`."""
        step_s = task.resolution_s
        step_ns = step_s * NS
        period_ns = duration_ns(self.settings.score_period)
        end = floor_time(now_ns() if end_ns is None else end_ns, duration_ns(self.settings.score_interval) // NS)
        horizon_ns = task.horizon_steps * step_ns
        frame = self.store.read_forecasts(task.name, end - period_ns - horizon_ns, end, run)
        if frame.empty:
            return 0
        last_end = frame.groupby("cutoff_ns")["ts_ns"].transform("max") + step_ns
        frame = frame[(last_end <= end) & (last_end > end - period_ns)]
        if frame.empty:
            return 0
        start = int(frame["cutoff_ns"].min()) - ISSUE_TAIL_S * NS
        n = int((end - start) // step_ns)
        grid = self.store.read_grid([task.target], start, step_s, n)[task.target]
        actual = pd.Series(grid, index=start + step_ns * np.arange(n, dtype=np.int64))
        threshold = quiet_threshold(grid, self.settings.quiet_fraction, self.settings.quiet_threshold_w)
        rows = score(frame, actual, threshold.value_w, self.settings.wql_floor_w, step_s)
        samples = score_samples(rows, self.site, task.name, period=self.settings.score_period, run=run, ts_ns=end)
        return self.store.write_samples(samples)


@dataclass(frozen=True)
class FinetuneResult:
    """Outcome of one fine-tune."""

    version: str
    promoted: bool
    reasons: tuple[str, ...]
    manifest: dict[str, Any]
    tuned: Any = field(default=None, repr=False)  # the fine-tuned pipeline, in eval mode


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
    task = next(t for t in settings.tasks if t.name == cfg.task)
    with registry.lock():
        split = ft.make_split(
            now_ns() if at_ns is None else at_ns, task.resolution_s, cfg.train_days, cfg.validation_days, cfg.gate_days
        )
        n = int((split.end_ns - split.train_start_ns) // (task.resolution_s * NS))
        series = store.read_grid([task.target, *task.past_covariates], split.train_start_ns, task.resolution_s, n)
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
        with tempfile.TemporaryDirectory(prefix="finetune-", dir=registry.root) as scratch:
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
            )
            manifest = ft.build_manifest(
                pipeline, base_model, task, settings, split=split, progress=progress, validation=len(validation)
            )
            manifest["gate"] = {
                **scores,
                "promote": decision.promote,
                "reasons": list(decision.reasons),
                "margin": cfg.gate_margin,
            }
            version = ft.register(registry, Path(scratch) / "finetuned-ckpt", manifest)
        if decision.promote:
            registry.set_active(version)
        pruned = registry.prune(cfg.keep_versions)
        log.info(
            "finetune_finished",
            version=version,
            promoted=decision.promote,
            reasons=list(decision.reasons),
            pruned=pruned,
        )
        return FinetuneResult(version, decision.promote, decision.reasons, manifest, tuned)


def safe(job: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a scheduled job; log classified errors instead of killing the scheduler (retried next cycle)."""
    try:
        return job(*args, **kwargs)
    except RetryableError as exc:
        log.warning("job_retry_next_cycle", job=getattr(job, "__name__", str(job)), error=str(exc))
    except RejectedError as exc:
        log.error("job_rejected", job=getattr(job, "__name__", str(job)), error=str(exc))
    except Exception:
        log.exception("job_failed", job=getattr(job, "__name__", str(job)))
    return None
