"""Run every registered model (forecaster.zoo) on one window.

A model that fails falls back to persistence for that run, tagged with the reason (fallback). A model that
is not available for this window (forecaster.zoo.NotAvailable) writes nothing; its reason is returned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forecaster import baselines, zoo
from forecaster.frame import Forecast, mean_from_quantiles
from forecaster.models import ModelSet
from forecaster.windows import Window

# Stored levels for the baselines when no Chronos pipeline is available.
DEFAULT_LEVELS = (0.01, 0.05, *(round(0.05 * k, 2) for k in range(2, 19)), 0.95, 0.99)


@dataclass(frozen=True)
class RunOutcome:
    """Forecasts of one window plus what fell back and why, and what was not available and why."""

    forecasts: list[Forecast]
    failures: dict[str, str]
    unavailable: dict[str, str] = field(default_factory=dict)


def _make(
    window: Window,
    target: str,
    model: zoo.ForecastModel,
    q: np.ndarray,
    *,
    levels: tuple[float, ...],
    fallback: str = "",
) -> Forecast:
    return Forecast(
        window.task,
        target,
        model.name,
        model.version,
        window.cutoff_ns,
        window.horizon_ts_ns,
        window.lead_s,
        levels,
        q,
        mean_from_quantiles(levels, q),
        fallback,
    )


def levels_of(resident: ModelSet | None) -> tuple[float, ...]:
    """The stored quantile levels: the checkpoint's, else DEFAULT_LEVELS."""
    return resident.levels if resident is not None else DEFAULT_LEVELS


def forecast_window(
    window: Window, target: str, models: Sequence[zoo.ForecastModel], levels: tuple[float, ...]
) -> RunOutcome:
    """Every model of `models` on one window, in order."""
    fallback_q = baselines.persistence(window, levels)
    out: list[Forecast] = []
    failures: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    for model in models:
        try:
            q = zoo.monotone(model.predict(window, levels))
            if q.shape != (len(levels), window.horizon_steps):
                raise ValueError(f"forecast of shape {q.shape}, expected {(len(levels), window.horizon_steps)}")
            if not np.isfinite(q).all():
                raise ValueError("non-finite forecast")
            out.append(_make(window, target, model, q, levels=levels))
        except zoo.NotAvailable as exc:
            unavailable[model.name] = str(exc)
        except Exception as exc:
            failures[model.name] = f"{exc.__class__.__name__}: {exc}"
            out.append(_make(window, target, model, fallback_q, levels=levels, fallback=failures[model.name]))
    return RunOutcome(out, failures, unavailable)


def run_models(
    window: Window,
    target: str,
    models: ModelSet | None,
    context_steps: int,
    base_error: str = "",
    *,
    site_models: Mapping[str, tuple[str, Any]] | None = None,
) -> RunOutcome:
    """Every registered model on one window. `models` None = base unavailable (base tagged fallback).
    `site_models`: active versions of the models trained on the site (zoo.Resources.site_models)."""
    resources = zoo.Resources(models, base_error, context_steps, dict(site_models or {}))
    return forecast_window(window, target, zoo.lineup(resources), levels_of(models))
