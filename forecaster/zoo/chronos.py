"""Chronos-2, base and fine-tuned, served by the resident ModelSet (one copy of the base weights)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from forecaster.models import BASE, FINETUNED, pipeline_quantiles
from forecaster.windows import Window
from forecaster.zoo.protocol import LEARNED, Kind, NotAvailable, Resources, at_levels


class ChronosBase:
    """The pretrained Chronos-2 (adapter switched off). A missing base model is a failure (fallback tagged)."""

    name: ClassVar[str] = BASE
    label: ClassVar[str] = "base"
    kind: ClassVar[Kind] = LEARNED
    takes_covariates: ClassVar[bool] = True
    uses_base_weights: ClassVar[bool] = True  # labelled as a stand-in when the base weights were one

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    @property
    def version(self) -> str:
        """base:<model id>, or base:unavailable."""
        resident = self.resources.resident
        return resident.base_version if resident is not None else "base:unavailable"

    def predict(self, window: Window, levels: Sequence[float]) -> np.ndarray:
        """Quantiles (len(levels), H), monotone across levels."""
        resident = self.resources.resident
        if resident is None:
            raise RuntimeError(self.resources.base_error or "base model unavailable")
        q = resident.predict(window, self.name, self.resources.context_steps)
        return at_levels(q, resident.levels, levels)


class ChronosFinetuned(ChronosBase):
    """The active fine-tuned version on the resident base; not available when none is active."""

    name: ClassVar[str] = FINETUNED
    label: ClassVar[str] = "fine-tuned"

    @property
    def version(self) -> str:
        """The active version id."""
        resident = self.resources.resident
        return (resident.adapter_version if resident is not None else None) or "none"

    def predict(self, window: Window, levels: Sequence[float]) -> np.ndarray:
        """Quantiles (len(levels), H); NotAvailable without an active fine-tuned version."""
        resident = self.resources.resident
        if resident is None or resident.adapter_version is None:
            raise NotAvailable("no fine-tuned version is active")
        return super().predict(window, levels)


class ChronosPipeline:
    """A Chronos-2 pipeline that is not the resident one (the gate's freshly fine-tuned candidate), behind the
    same protocol and the same predict path (forecaster.models.pipeline_quantiles) as the resident models.
    Not registered: it forecasts only inside the promotion gate."""

    name: ClassVar[str] = "candidate"
    label: ClassVar[str] = "fine-tuned candidate"
    kind: ClassVar[Kind] = LEARNED
    takes_covariates: ClassVar[bool] = True

    def __init__(self, pipeline: Any, version: str, context_steps: int) -> None:
        self.pipeline = pipeline
        self.version = version
        self.context_steps = context_steps

    def predict(self, window: Window, levels: Sequence[float]) -> np.ndarray:
        """Quantiles (len(levels), H), monotone across levels."""
        q = pipeline_quantiles(self.pipeline, window, self.context_steps)
        return at_levels(q, [float(x) for x in self.pipeline.quantiles], levels)
