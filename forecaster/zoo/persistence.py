"""Persistence: the last observed value, spread from the context's own h-step changes (the skill reference)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from forecaster import baselines
from forecaster.frame import BASELINE_VERSION
from forecaster.windows import Window
from forecaster.zoo.protocol import BASELINE, Kind, Resources


class Persistence:
    """Last value; never needs covariates."""

    name: ClassVar[str] = "persistence"
    label: ClassVar[str] = "persistence"
    kind: ClassVar[Kind] = BASELINE
    takes_covariates: ClassVar[bool] = False
    version = BASELINE_VERSION

    def __init__(self, resources: Resources) -> None:
        del resources

    def predict(self, window: Window, levels: Sequence[float]) -> np.ndarray:
        """Quantiles (len(levels), H)."""
        return baselines.persistence(window, levels)
