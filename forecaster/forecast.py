"""Run every model on one window: base, finetuned (if active), persistence, seasonal naive.

A model that fails falls back to persistence for that run, tagged with the reason (fallback)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecaster import baselines
from forecaster.frame import BASELINE_VERSION, Forecast, mean_from_quantiles
from forecaster.models import BASE, FINETUNED, ModelSet
from forecaster.windows import DAY_S, NS, Window

PERSISTENCE = "persistence"
SEASONAL_NAIVE = "seasonal_naive"
MODELS = (BASE, FINETUNED, PERSISTENCE, SEASONAL_NAIVE)
# Stored levels for the baselines when no Chronos pipeline is available.
DEFAULT_LEVELS = (0.01, 0.05, *(round(0.05 * k, 2) for k in range(2, 19)), 0.95, 0.99)


@dataclass(frozen=True)
class RunOutcome:
    """Forecasts of one window plus what fell back and why."""

    forecasts: list[Forecast]
    failures: dict[str, str]


def _make(
    window: Window,
    target: str,
    model: str,
    version: str,
    *,
    levels: tuple[float, ...],
    quantiles: np.ndarray,
    fallback: str = "",
) -> Forecast:
    return Forecast(
        window.task,
        target,
        model,
        version,
        window.cutoff_ns,
        window.horizon_ts_ns,
        window.lead_s,
        levels,
        quantiles,
        mean_from_quantiles(levels, quantiles),
        fallback,
    )


def run_models(
    window: Window, target: str, models: ModelSet | None, context_steps: int, base_error: str = ""
) -> RunOutcome:
    """All models for one window. `models` None = base unavailable (baselines only, base tagged fallback)."""
    levels = models.levels if models is not None else DEFAULT_LEVELS
    persistence_q = baselines.persistence(window, levels)
    out: list[Forecast] = [_make(window, target, PERSISTENCE, BASELINE_VERSION, levels=levels, quantiles=persistence_q)]
    failures: dict[str, str] = {}
    season_steps = DAY_S * NS // window.step_ns
    try:
        seasonal_q = baselines.seasonal_naive(window, levels, int(season_steps))
        out.append(_make(window, target, SEASONAL_NAIVE, BASELINE_VERSION, levels=levels, quantiles=seasonal_q))
    except ValueError as exc:
        failures[SEASONAL_NAIVE] = str(exc)
        out.append(
            _make(
                window,
                target,
                SEASONAL_NAIVE,
                BASELINE_VERSION,
                levels=levels,
                quantiles=persistence_q,
                fallback=str(exc),
            )
        )
    chronos = [(BASE, models.base_version if models else "base:unavailable")]
    if models is not None and models.adapter_version is not None:
        chronos.append((FINETUNED, models.adapter_version))
    for model, version in chronos:
        try:
            if models is None:
                raise RuntimeError(base_error or "base model unavailable")
            q = models.predict(window, model, context_steps)
            if not np.isfinite(q).all():
                raise ValueError("non-finite forecast")
            out.append(_make(window, target, model, version, levels=levels, quantiles=q))
        except Exception as exc:
            failures[model] = f"{exc.__class__.__name__}: {exc}"
            out.append(
                _make(window, target, model, version, levels=levels, quantiles=persistence_q, fallback=failures[model])
            )
    return RunOutcome(out, failures)
