"""Seasonal naive: the value one day earlier, spread from the context's day-over-day changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from forecaster import baselines
from forecaster.frame import BASELINE_VERSION
from forecaster.windows import DAY_S, NS, Window
from forecaster.zoo.protocol import BASELINE, Kind, NotAvailable, Resources


class SeasonalNaive:
    """Same time yesterday; NotAvailable when the context is too short for a season and its spread."""

    name: ClassVar[str] = "seasonal_naive"
    label: ClassVar[str] = "seasonal naive"
    kind: ClassVar[Kind] = BASELINE
    takes_covariates: ClassVar[bool] = False
    version = BASELINE_VERSION

    def __init__(self, resources: Resources) -> None:
        del resources

    def predict(self, window: Window, levels: Sequence[float]) -> np.ndarray:
        """Quantiles (len(levels), H)."""
        try:
            return baselines.seasonal_naive(window, levels, int(DAY_S * NS // window.step_ns))
        except ValueError as exc:
            raise NotAvailable(str(exc)) from exc
