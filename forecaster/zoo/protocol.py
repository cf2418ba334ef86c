"""The model protocol: what every forecasting model (baseline or learned) offers the rest of the forecaster.

A model is a class with four class attributes and one method:

- `name` (str): the `model` tag / column everywhere (forecasts, scores, run folder, report);
- `label` (str): its display name in the report;
- `kind`: BASELINE or LEARNED (learned models carry the stand-in tag when the base weights were a stand-in);
- `takes_covariates` (bool): True = forecast once per covariate variant of a backtest; False = once, with
  the target only (variant "none");
- `version` (str attribute or property): the `model_version` tag;
- `predict(window, levels) -> ndarray (len(levels), H)`: quantiles of the target, non-decreasing across levels.

Optional: `uses_base_weights = True` for a model built on the base Chronos-2 weights (the report tags it
when those were a stand-in); `fit(data: FitData)`, called by the backtest before any cut-off
with the data strictly before the split (a model that needs training on the site's history).
The constructor takes one `Resources`.

`predict` raises NotAvailable when the model cannot forecast this window for a known reason (too little
context, no adapter active): nothing is written for it and the reason is reported. Any other exception is a
failure: the model falls back to persistence for that window, tagged with the error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

from forecaster.drivers import Drivers
from forecaster.windows import Window

if TYPE_CHECKING:
    from forecaster.config import ForecastTask
    from forecaster.models import ModelSet

Kind = Literal["baseline", "learned"]
BASELINE: Kind = "baseline"
LEARNED: Kind = "learned"


class NotAvailable(Exception):
    """The model cannot forecast this window; the message says why (reported, nothing written)."""


@dataclass(frozen=True)
class Resources:
    """What a model may need at construction: the resident Chronos-2 (None = could not be loaded, with the
    one-line reason in base_error), the task's context length, and the active versions of the models
    trained on the site's history, by model name: (version id, the loaded model)."""

    resident: ModelSet | None = None
    base_error: str = ""
    context_steps: int = 2048
    site_models: Mapping[str, tuple[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class FitData:
    """Training data of a backtest: gridded series (NaN gaps) from grid_start_ns, all strictly before the split.
    `validation_start_ns`: where the fine-tune's validation range (checkpoint selection) begins, so a
    trained model can use exactly the fine-tune's training range; None = no validation range. `series` holds
    the history of the task's driver covariates; `drivers` gives their values as known at each cut-off."""

    series: Mapping[str, np.ndarray]
    grid_start_ns: int
    task: ForecastTask
    validation_start_ns: int | None = None
    drivers: Drivers | None = None  # the known-future drivers of the span (forecaster.drivers)


@runtime_checkable
class ForecastModel(Protocol):
    """A forecasting model (see the module docstring)."""

    name: ClassVar[str]
    label: ClassVar[str]
    kind: ClassVar[Kind]
    takes_covariates: ClassVar[bool]

    @property
    def version(self) -> str:
        """The model_version tag of its forecasts."""
        ...

    def predict(self, window: Window, levels: Sequence[float]) -> np.ndarray:
        """Quantiles (len(levels), H) of the target over the window's horizon."""
        ...


@runtime_checkable
class Trainable(Protocol):
    """A model with the optional `fit` step."""

    def fit(self, data: FitData) -> None:
        """Train on data strictly before the split."""
        ...


def at_levels(quantiles: np.ndarray, have: Sequence[float], want: Sequence[float]) -> np.ndarray:
    """Quantiles at other levels: exact rows where the level exists, else linear interpolation per step."""
    have_t, want_t = tuple(float(x) for x in have), tuple(float(x) for x in want)
    if have_t == want_t:
        return np.asarray(quantiles, dtype=float)
    q = np.asarray(quantiles, dtype=float)
    return np.array([np.interp(want_t, have_t, q[:, i]) for i in range(q.shape[1])]).T


def median_of(quantiles: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """The 0.5 quantile (interpolated when 0.5 is not a stored level)."""
    return np.asarray(at_levels(quantiles, levels, (0.5,))[0])
