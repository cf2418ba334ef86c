"""The site-trained gradient-boosting model (forecaster/gbm.py) as a plugin.

Live (`serve`, `predict`): the registry's active gradient-boosting version, handed over in
`Resources.site_models["gbm"]`; not available while none is active. Backtests: `fit` trains one model per
covariate variant on the data before the split (training range and validation range exactly as the
backtest's fine-tune splits them), so the ablation compares like with like.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from forecaster.gbm_features import feature_names
from forecaster.windows import NS, Window
from forecaster.zoo.protocol import LEARNED, FitData, Kind, NotAvailable, Resources, at_levels

if TYPE_CHECKING:  # imported where used: forecaster.gbm needs forecaster.rolling, which needs this package
    from forecaster.gbm import GbmForecaster, GbmParams

NAME = "gbm"


class SiteGbm:
    """LightGBM quantile boosters trained on this site's history."""

    name: ClassVar[str] = NAME
    label: ClassVar[str] = "gradient boosting (site-trained)"
    kind: ClassVar[Kind] = LEARNED
    takes_covariates: ClassVar[bool] = True

    def __init__(self, resources: Resources, params: GbmParams | None = None) -> None:
        self.params = params
        self._version = "none"
        self._why = "no gradient-boosting version is active"
        self._models: dict[tuple[str, ...], GbmForecaster] = {}
        active = resources.site_models.get(NAME)
        if active is not None:
            version, model = active
            self._version = version
            self._models[tuple(model.names)] = model

    @property
    def version(self) -> str:
        """The active (or backtest-trained) version id."""
        return self._version

    def fit(self, data: FitData) -> None:
        """One model per covariate variant on the pre-split data (train / validation as the fine-tune)."""
        from forecaster.backtest.ablation import task_variants, variant_task
        from forecaster.finetune import Split
        from forecaster.gbm import GbmUnavailable, train_gbm

        step_ns = data.task.resolution_s * NS
        end = data.grid_start_ns + len(data.series[data.task.target]) * step_ns
        val_start = data.validation_start_ns if data.validation_start_ns is not None else end
        split = Split(data.grid_start_ns, val_start, end, end)
        self._models = {}
        for variant in task_variants(data.task):
            task = variant_task(data.task, variant)
            try:
                model = train_gbm(data.series, data.grid_start_ns, task, split, self.params, drivers=data.drivers)
            except GbmUnavailable as exc:
                self._why = f"not trained: {exc}"
                continue
            self._models[tuple(model.names)] = model
        self._version = "gbm-backtest"

    def predict(self, window: Window, levels: Sequence[float]) -> np.ndarray:
        """Quantiles at `levels`, interpolated from the trained levels (flat beyond the outer ones)."""
        if not self._models:
            raise NotAvailable(self._why)
        model = self._models.get(tuple(feature_names(window)))
        if model is None:
            raise NotAvailable("no gradient-boosting model was trained for this window's covariates")
        return at_levels(model.predict(window), model.levels, levels)
