"""Forecast every cut-off of a backtest: fit the trainable models on pre-split data, run every model and
covariate variant at each cut-off, write the forecasts to InfluxDB as they are done (tag variant=<variant>)
and tally the fallbacks and not-available reasons."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bess_common.logs import RepeatCounter, get_logger
from bess_common.sample import Sample
from forecaster import zoo
from forecaster.backtest.ablation import variant_windows
from forecaster.backtest.plan import Plan, finetune_split, iso, pre_split_series
from forecaster.drivers import Drivers
from forecaster.forecast import RunOutcome, forecast_window, levels_of
from forecaster.frame import Forecast, forecast_samples
from forecaster.models import ModelSet
from forecaster.progress import Progress
from forecaster.run_contract import NO_VARIANT, TARGET_ONLY
from forecaster.store import ForecastStore
from forecaster.windows import skip_reason

log = get_logger("forecaster.backtest")


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
