"""The service's jobs: forecast one task at its cut-off, score a period; `safe` runs a scheduled job.

I/O arrives through the constructor (store, registry, resident models); the maths lives in the pure modules.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bess_common.errors import RejectedError, RetryableError
from bess_common.logs import RepeatCounter, get_logger
from forecaster import finetune as ft
from forecaster.config import ForecasterSettings, ForecastTask
from forecaster.drivers import Drivers
from forecaster.forecast import RunOutcome, run_models
from forecaster.frame import forecast_samples
from forecaster.gbm_job import gbm_registry, load_active
from forecaster.models import BASE, FINETUNED, ModelSet
from forecaster.regimes import quiet_threshold
from forecaster.registry import Registry
from forecaster.scoring import ISSUE_TAIL_S, score, score_samples
from forecaster.store import ForecastStore, read_task_drivers
from forecaster.windows import NS, build_window, duration_ns, floor_time, skip_reason
from forecaster.zoo.gbm import NAME as GBM_NAME
from forecaster.zoo.persistence import Persistence

log = get_logger("forecaster.jobs")


def now_ns() -> int:
    """Wall-clock UTC now in ns."""
    return time.time_ns()


def task_cutoff(task: ForecastTask, at_ns: int) -> int:
    """The cut-off a run at `at_ns` forecasts from: aligned down to the cadence (and so to the grid)."""
    return floor_time(floor_time(at_ns, task.cadence_s), task.resolution_s)


def pending_cutoffs(task: ForecastTask, last_done_ns: int | None, current_ns: int, limit: int) -> list[int]:
    """Cut-offs to forecast now, oldest first: those after the last one done up to the current one, at most
    `limit` (the newest); just the current one when nothing was done yet; none when it is done."""
    if last_done_ns is None:
        return [current_ns]
    step_ns = task.cadence_s * NS
    out: list[int] = []
    c = current_ns
    while c > last_done_ns and len(out) < limit:
        out.append(c)
        c = task_cutoff(task, c - step_ns)
    return out[::-1]


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
        self._adapter_lock = threading.Lock()  # concurrent task jobs must not reload the adapter twice
        self._pointer_seen: tuple[str | None, int] | None = None  # (active name, pointer mtime) handled
        self.broken_active: tuple[str, str] | None = None  # (version, reason) when the active one is unusable
        self._done: dict[str, int] = {}  # task -> the last cut-off forecast (live)
        self._task_locks = {t.name: threading.Lock() for t in settings.tasks}

    def task(self, name: str) -> ForecastTask:
        """Task by name; KeyError when unknown."""
        for task in self.settings.tasks:
            if task.name == name:
                return task
        raise KeyError(name)

    def refresh_adapter(self) -> None:
        """Follow the registry's active pointer (a newly promoted version is picked up without restart).

        The active version is checked at load (manifest readable, adapter bytes = recorded sha256); a broken
        one is not loaded, and `finetuned` is then written as a fallback series. Serialised: two task jobs
        starting together load once, and neither runs while the other swaps the adapter."""
        if self.models is None:
            return
        with self._adapter_lock:
            pointer = self.registry.root / "active"
            try:
                seen = (self.registry.active_name(), pointer.stat().st_mtime_ns)
            except FileNotFoundError:
                seen = (None, 0)
            if seen == self._pointer_seen:
                return
            name = seen[0]
            problem = self._adapter_problem(name)
            if problem:
                self.models.set_adapter(None, None)
                self.broken_active = (str(name), problem)
                log.error(
                    "adapter_broken",
                    version=name,
                    reason=problem,
                    effect="finetuned is written as the persistence fallback",
                    fix="promote another version or roll back (bess-forecaster models / rollback)",
                )
            else:
                self.broken_active = None
                if name != self.models.adapter_version:
                    log.info("adapter_active", version=name or "none (base only)")
            self._pointer_seen = seen

    def _adapter_problem(self, name: str | None) -> str | None:
        """Load `name` (None = base only) on the resident model; the reason when it cannot be used."""
        assert self.models is not None
        if name is None:
            self.models.set_adapter(None, None)
            return None
        versions, broken = self.registry.scan()
        version = next((v for v in versions if v.version == name), None)
        if version is None:
            reason = next((b.reason for b in broken if b.version == name), "its folder is missing")
            return f"version {name} is unusable: {reason}"
        problem = self.registry.adapter_problem(version)
        if problem:
            return problem
        try:
            self.models.set_adapter(name, version.adapter_dir)
        except Exception as exc:
            return f"adapter does not load ({exc.__class__.__name__}: {str(exc)[:200]})"
        return None

    def _with_broken_finetuned(self, outcome: RunOutcome) -> RunOutcome:
        """`finetuned` as a fallback series (persistence, tagged with the reason) when the active version
        is broken, so that the gap shows where operators look for fallbacks."""
        if self.broken_active is None:
            return outcome
        version, reason = self.broken_active
        persistence = next((f for f in outcome.forecasts if f.model == Persistence.name), None)
        if persistence is None:
            return outcome
        error = f"active version broken: {reason}"
        stand_in = dataclasses.replace(persistence, model=FINETUNED, model_version=version, fallback=error)
        unavailable = {k: v for k, v in outcome.unavailable.items() if k != FINETUNED}
        return RunOutcome([*outcome.forecasts, stand_in], {**outcome.failures, FINETUNED: error}, unavailable)

    def catch_up(self, task: ForecastTask) -> list[ForecastResult]:
        """Forecast the current cut-off and those missed since the last one done (InfluxDB down or hung,
        the service stopped), at most `backfill_max_cutoffs`, oldest first. A failure propagates and the next
        run starts again from the last cut-off done. Serialised per task."""
        with self._task_locks[task.name]:
            current = task_cutoff(task, now_ns())
            limit = self.settings.backfill_max_cutoffs
            if task.name not in self._done:
                last = self.store.last_cutoff(task.name, since_ns=current - (limit + 1) * task.cadence_s * NS)
                if last is not None:
                    self._done[task.name] = last
            pending = pending_cutoffs(task, self._done.get(task.name), current, limit)
            if len(pending) > 1:
                log.info("forecast_backfill", task=task.name, cutoffs=len(pending), first=ft.iso(pending[0]))
            results = []
            for cutoff in pending:
                results.append(self.forecast(task, at_ns=cutoff))
                self._done[task.name] = cutoff
            return results

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

    def read_drivers(self, task: ForecastTask, start_ns: int, end_ns: int) -> Drivers | None:
        """The GX's plan and the PV forecast stamped before end_ns, when the task uses them."""
        return read_task_drivers(self.store, self.settings, task, start_ns, end_ns)

    def forecast(self, task: ForecastTask, at_ns: int | None = None, run: str = "live") -> ForecastResult:
        """Forecast one task at the cut-off for `at_ns` with every model and write the result."""
        self.refresh_adapter()
        self.refresh_site_models()
        cutoff = task_cutoff(task, now_ns() if at_ns is None else at_ns)
        step_s = task.resolution_s
        keys = [task.target, *task.past_covariates]
        context_start = cutoff - task.context_steps * step_s * NS
        context = self.store.read_grid(keys, context_start, step_s, task.context_steps)
        drivers = self.read_drivers(task, context_start, cutoff + 1)  # issued at or before the cut-off only
        window = build_window(
            task.name,
            cutoff,
            step_s * NS,
            context,
            target=task.target,
            past_covariates=task.past_covariates,
            known_covariates=task.known_covariates,
            horizon_steps=task.horizon_steps,
            drivers=drivers,
        )
        reason = skip_reason(window, task.min_context_fraction, task.max_last_gap_steps)
        if reason:
            self.repeats.hit(f"skip:{task.name}", "forecast_skipped", task=task.name, reason=reason)
            return ForecastResult(task.name, cutoff, 0, skipped=reason)
        outcome = self._with_broken_finetuned(
            run_models(
                window, task.target, self.models, task.context_steps, self.base_error, site_models=self.site_models
            )
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
