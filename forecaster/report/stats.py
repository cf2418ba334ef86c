"""The report's window bootstrap (the metrics themselves are forecaster.metrics, nothing else).

A cell (regime x model x variant x lead bucket) is the per-WINDOW form of forecaster.metrics: one row of
summed terms per cutoff. A bootstrap resample of windows is a weighted sum of those rows, so ~1000 resamples
cost one small matrix product. Paired comparisons apply the same resample weights to both sides over the
windows they share.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np

from forecaster import metrics
from forecaster.metrics import DEFAULT_WQL_FLOOR_W, FloatArray

CI_LEVEL = 0.95
MetricFn = Callable[[FloatArray], FloatArray]


def metric_fn(name: str, floor_w: float = DEFAULT_WQL_FLOOR_W) -> MetricFn:
    """The forecaster.metrics function of one metric name."""
    return cast(MetricFn, metrics.metric_functions(floor_w)[name])


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a bootstrap confidence interval (NaN bounds when there are < 2 windows)."""

    value: float
    low: float
    high: float

    @property
    def has_ci(self) -> bool:
        """True when both bounds are finite."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def excludes_zero(self) -> bool:
        """True when the CI lies entirely on one side of zero (the difference is beyond noise)."""
        return self.has_ci and (self.low > 0.0 or self.high < 0.0)


NAN_ESTIMATE = Estimate(math.nan, math.nan, math.nan)


def resample_counts(n_windows: int, resamples: int, seed: int, key: str) -> FloatArray:
    """(resamples, n_windows) counts of each window in each bootstrap resample; deterministic per seed+key."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    picks = rng.integers(0, n_windows, size=(resamples, n_windows))
    flat = (picks + np.arange(resamples)[:, None] * n_windows).ravel()
    return np.bincount(flat, minlength=resamples * n_windows).reshape(resamples, n_windows).astype(np.float64)


def _interval(samples: FloatArray) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size < 2:
        return math.nan, math.nan
    tail = (1.0 - CI_LEVEL) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def estimate(point: float, samples: FloatArray, n_windows: int) -> Estimate:
    """An Estimate from a point value and bootstrap samples; no CI below two windows."""
    if n_windows < 2 or not math.isfinite(point):
        return Estimate(point, math.nan, math.nan)
    low, high = _interval(samples)
    return Estimate(point, low, high)


def _safe_div(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def metric_estimates(
    window_sums: FloatArray, counts: FloatArray, floor_w: float = DEFAULT_WQL_FLOOR_W
) -> dict[str, Estimate]:
    """Every metric of forecaster.metrics with its CI, from (windows, SUM_COLUMNS) sums and resample counts."""
    total = window_sums.sum(axis=0)
    boot = counts @ window_sums
    n = window_sums.shape[0]
    out = {}
    for name in metrics.METRIC_NAMES:
        fn = metric_fn(name, floor_w)
        out[name] = estimate(float(fn(total)), fn(boot), n)
    return out


@dataclass(frozen=True)
class PairedEstimate:
    """B minus A on the same windows: the absolute difference and the relative change B/A - 1."""

    value_a: float
    value_b: float
    diff: Estimate
    rel: Estimate


def paired_estimates(
    sums_a: FloatArray,
    sums_b: FloatArray,
    counts: FloatArray,
    names: tuple[str, ...],
    floor_w: float = DEFAULT_WQL_FLOOR_W,
) -> dict[str, PairedEstimate]:
    """Paired bootstrap of metric(B) - metric(A) and metric(B)/metric(A) - 1 over aligned windows."""
    boot_sums_a, boot_sums_b = counts @ sums_a, counts @ sums_b
    total_a, total_b = sums_a.sum(axis=0), sums_b.sum(axis=0)
    n = sums_a.shape[0]
    out = {}
    for metric in names:
        fn = metric_fn(metric, floor_w)
        a, b = float(fn(total_a)), float(fn(total_b))
        boot_a, boot_b = fn(boot_sums_a), fn(boot_sums_b)
        rel_point = b / a - 1.0 if a > 0 and math.isfinite(b) else math.nan
        rel_samples = _safe_div(boot_b, boot_a) - 1.0
        out[metric] = PairedEstimate(a, b, estimate(b - a, boot_b - boot_a, n), estimate(rel_point, rel_samples, n))
    return out


def paired_estimate(
    sums_a: FloatArray, sums_b: FloatArray, counts: FloatArray, metric: str, floor_w: float = DEFAULT_WQL_FLOOR_W
) -> PairedEstimate:
    """Paired bootstrap of one metric (see paired_estimates)."""
    return paired_estimates(sums_a, sums_b, counts, (metric,), floor_w)[metric]


def ratio_by_column(numerators: FloatArray, denominators: FloatArray, counts: FloatArray) -> list[Estimate]:
    """Per column of (windows, columns) matrices, sum(num)/sum(den) with a window-bootstrap CI (MAE by lead)."""
    point = _safe_div(numerators.sum(axis=0), denominators.sum(axis=0))
    boot = _safe_div(counts @ numerators, counts @ denominators)
    n = numerators.shape[0]
    return [estimate(float(point[i]), boot[:, i], n) for i in range(point.shape[0])]
