"""The forecast record (one model, one cut-off) and its long table form, ForecastFrame.

ForecastFrame columns: task, target, model, model_version, fallback, run, cutoff_ns, ts_ns, lead_s,
lead_bucket, mean, median and one column per stored quantile level named by `quantile_field`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bess_common.sample import Sample
from bess_common.schema import FORECAST
from forecaster.leads import lead_bucket, lead_label

BASELINE_VERSION = "baseline"


def quantile_field(level: float) -> str:
    """0.1 -> 'q0_1', 0.05 -> 'q0_05' (field names in InfluxDB and ForecastFrame columns)."""
    return "q" + f"{level:g}".replace(".", "_")


def field_level(name: str) -> float | None:
    """Inverse of quantile_field; None for other names."""
    if not name.startswith("q") or "_" not in name:
        return None
    try:
        return float(name[1:].replace("_", "."))
    except ValueError:
        return None


@dataclass(frozen=True)
class Forecast:
    """One model's forecast for one window."""

    task: str
    target: str
    model: str  # base | finetuned | persistence | seasonal_naive
    model_version: str
    cutoff_ns: int
    ts_ns: np.ndarray  # bucket start of each predicted step
    lead_s: np.ndarray
    levels: tuple[float, ...]
    quantiles: np.ndarray  # shape (len(levels), H)
    mean: np.ndarray
    fallback: str = ""  # why this is persistence standing in for `model`, or ""

    def quantile(self, level: float) -> np.ndarray:
        """The forecast at one level (interpolated between stored levels when needed)."""
        levels = np.asarray(self.levels)
        if level in self.levels:
            return np.asarray(self.quantiles[self.levels.index(level)])
        return np.array([np.interp(level, levels, self.quantiles[:, i]) for i in range(self.quantiles.shape[1])])

    @property
    def median(self) -> np.ndarray:
        """The 0.5 quantile."""
        return self.quantile(0.5)


def mean_from_quantiles(levels: Sequence[float], quantiles: np.ndarray) -> np.ndarray:
    """Estimate the mean by integrating the piecewise-linear quantile function (flat beyond the ends)."""
    lv = np.asarray(levels, dtype=float)
    q = np.asarray(quantiles, dtype=float)
    edges = np.concatenate([[0.0], (lv[1:] + lv[:-1]) / 2, [1.0]])
    weights = np.diff(edges)
    return np.asarray((weights[:, None] * q).sum(axis=0) / weights.sum())


def monotone(quantiles: np.ndarray) -> np.ndarray:
    """Monotone rearrangement: sorting across levels (axis 0) removes quantile crossing, never reorders steps."""
    return np.sort(np.asarray(quantiles, dtype=float), axis=0)


def forecast_samples(forecast: Forecast, site: str, run: str) -> list[Sample]:
    """InfluxDB points of one forecast: timestamp = predicted time, one point per step."""
    samples = []
    for i, ts_ns in enumerate(forecast.ts_ns):
        lead = int(forecast.lead_s[i])
        tags = {
            "site": site,
            "task": forecast.task,
            "target": forecast.target,
            "model": forecast.model,
            "model_version": forecast.model_version,
            "lead": lead_label(lead),
            "lead_bucket": lead_bucket(lead),
            "run": run,
        }
        if forecast.fallback:
            tags["fallback"] = "persistence"
        fields: dict[str, float | int | str] = {
            quantile_field(level): float(forecast.quantiles[j, i]) for j, level in enumerate(forecast.levels)
        }
        fields["median"] = float(forecast.median[i])
        fields["mean"] = float(forecast.mean[i])
        fields["cutoff_ns"] = int(forecast.cutoff_ns)
        samples.append(Sample(FORECAST, tags, fields, int(ts_ns)))
    return samples


def to_frame(forecasts: Iterable[Forecast], run: str = "live") -> pd.DataFrame:
    """Long ForecastFrame: one row per (forecast, predicted step)."""
    parts = []
    for f in forecasts:
        data: dict[str, object] = {
            "task": f.task,
            "target": f.target,
            "model": f.model,
            "model_version": f.model_version,
            "fallback": f.fallback,
            "run": run,
            "cutoff_ns": f.cutoff_ns,
            "ts_ns": f.ts_ns,
            "lead_s": f.lead_s,
            "lead_bucket": [lead_bucket(int(s)) for s in f.lead_s],
            "mean": f.mean,
            "median": f.median,
        }
        for j, level in enumerate(f.levels):
            data[quantile_field(level)] = f.quantiles[j]
        parts.append(pd.DataFrame(data))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
