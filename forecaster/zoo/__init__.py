"""The model registry: every forecasting model, in the order forecasts, scores and the report list them.

A new model is one file in this package (a class following forecaster.zoo.protocol) plus one line in MODELS.
"""

from __future__ import annotations

from collections.abc import Sequence

from forecaster.frame import monotone
from forecaster.zoo.chronos import ChronosBase, ChronosFinetuned
from forecaster.zoo.gbm import SiteGbm
from forecaster.zoo.persistence import Persistence
from forecaster.zoo.protocol import (
    BASELINE,
    LEARNED,
    FitData,
    ForecastModel,
    Kind,
    NotAvailable,
    Resources,
    Trainable,
    median_of,
)
from forecaster.zoo.seasonal_naive import SeasonalNaive

MODELS: tuple[type[ForecastModel], ...] = (
    ChronosBase,
    ChronosFinetuned,
    SiteGbm,
    Persistence,
    SeasonalNaive,
)
REFERENCE = Persistence.name  # the skill reference, and the stand-in when another model fails


def lineup(resources: Resources, models: Sequence[type[ForecastModel]] | None = None) -> list[ForecastModel]:
    """One instance of every registered model (or of `models`), in registry order."""
    return [cls(resources) for cls in (MODELS if models is None else models)]  # type: ignore[call-arg]


def names() -> list[str]:
    """Registered model names, in order."""
    return [cls.name for cls in MODELS]


def describe(cls: type[ForecastModel]) -> dict[str, object]:
    """The manifest entry of a model class (name, label, kind, takes_covariates)."""
    return {"name": cls.name, "label": cls.label, "kind": cls.kind, "takes_covariates": cls.takes_covariates}


__all__ = [
    "BASELINE",
    "LEARNED",
    "MODELS",
    "REFERENCE",
    "FitData",
    "ForecastModel",
    "Kind",
    "NotAvailable",
    "Resources",
    "Trainable",
    "describe",
    "lineup",
    "median_of",
    "monotone",
    "names",
]
