"""Pure metrics and window bootstrap.

Every metric is a ratio of sums over points (MAE = sum|e| / n, ...). A cell (regime x model x variant x lead
bucket) is summarised per WINDOW (one cutoff) as a row of sums; a bootstrap resample of windows is then a
weighted sum of those rows, so ~1000 resamples cost one small matrix product. Paired comparisons apply the
same resample weights to both sides over the windows they share.

(forecaster/metrics.py did not exist when this was written; these are the report's own definitions, to be
unified with it later.)
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Columns of a per-window sums matrix.
N, ABS_ERR, SQ_ERR, PINBALL, ABS_ACTUAL, COVERED, N_INTERVAL = range(7)
SUM_COLUMNS = ("n", "abs_err", "sq_err", "pinball", "abs_actual", "covered", "n_interval")
WQL_FLOOR_W = 1.0  # floor on mean |actual| (fev's epsilon), so quiet windows do not blow WQL up
CI_LEVEL = 0.95


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


def pinball(actual: FloatArray, forecast: FloatArray, level: float) -> FloatArray:
    """Pinball (quantile) loss of one quantile level, per point."""
    error = actual - forecast
    return np.maximum(level * error, (level - 1.0) * error)


def mean_pinball_over_levels(actual: FloatArray, quantiles: FloatArray, levels: tuple[float, ...]) -> FloatArray:
    """Per point, the pinball loss averaged over the quantile levels; `quantiles` is (points, levels)."""
    losses = np.column_stack([pinball(actual, quantiles[:, i], level) for i, level in enumerate(levels)])
    return np.asarray(losses.mean(axis=1), dtype=np.float64)


def _safe_div(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def mae(sums: FloatArray) -> FloatArray:
    """Mean absolute error (W) from summed columns (last axis = SUM_COLUMNS)."""
    return _safe_div(sums[..., ABS_ERR], sums[..., N])


def rmse(sums: FloatArray) -> FloatArray:
    """Root mean squared error (W)."""
    return np.sqrt(_safe_div(sums[..., SQ_ERR], sums[..., N]))


def wql(sums: FloatArray) -> FloatArray:
    """Weighted quantile loss: 2 x mean pinball / max(mean |actual|, 1 W)."""
    mean_pin = _safe_div(sums[..., PINBALL], sums[..., N])
    mean_abs = np.maximum(_safe_div(sums[..., ABS_ACTUAL], sums[..., N]), WQL_FLOOR_W)
    return 2.0 * mean_pin / mean_abs


def coverage(sums: FloatArray) -> FloatArray:
    """Share of actuals inside the 80 % interval (q0.1..q0.9)."""
    return _safe_div(sums[..., COVERED], sums[..., N_INTERVAL])


METRICS = {"mae": mae, "rmse": rmse, "wql": wql, "coverage80": coverage}


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


def metric_estimates(window_sums: FloatArray, counts: FloatArray) -> dict[str, Estimate]:
    """Every metric of METRICS with its CI, from (windows, SUM_COLUMNS) sums and resample counts."""
    total = window_sums.sum(axis=0)
    boot = counts @ window_sums
    n = window_sums.shape[0]
    return {name: estimate(float(fn(total)), fn(boot), n) for name, fn in METRICS.items()}


def skill_estimate(model_sums: FloatArray, reference_sums: FloatArray, counts: FloatArray) -> Estimate:
    """Skill vs a reference over the same windows: 1 - MAE_model / MAE_reference."""
    point = 1.0 - float(mae(model_sums.sum(axis=0)) / mae(reference_sums.sum(axis=0)))
    samples = 1.0 - mae(counts @ model_sums) / mae(counts @ reference_sums)
    return estimate(point, samples, model_sums.shape[0])


@dataclass(frozen=True)
class PairedEstimate:
    """B minus A on the same windows: the absolute difference and the relative change B/A - 1."""

    value_a: float
    value_b: float
    diff: Estimate
    rel: Estimate


def paired_estimates(
    sums_a: FloatArray, sums_b: FloatArray, counts: FloatArray, metrics: tuple[str, ...]
) -> dict[str, PairedEstimate]:
    """Paired bootstrap of metric(B) - metric(A) and metric(B)/metric(A) - 1 over aligned windows."""
    boot_sums_a, boot_sums_b = counts @ sums_a, counts @ sums_b
    total_a, total_b = sums_a.sum(axis=0), sums_b.sum(axis=0)
    n = sums_a.shape[0]
    out = {}
    for metric in metrics:
        fn = METRICS[metric]
        a, b = float(fn(total_a)), float(fn(total_b))
        boot_a, boot_b = fn(boot_sums_a), fn(boot_sums_b)
        rel_point = b / a - 1.0 if a > 0 else math.nan
        rel_samples = _safe_div(boot_b, boot_a) - 1.0
        out[metric] = PairedEstimate(a, b, estimate(b - a, boot_b - boot_a, n), estimate(rel_point, rel_samples, n))
    return out


def paired_estimate(sums_a: FloatArray, sums_b: FloatArray, counts: FloatArray, metric: str) -> PairedEstimate:
    """Paired bootstrap of one metric (see paired_estimates)."""
    return paired_estimates(sums_a, sums_b, counts, (metric,))[metric]


def ratio_by_column(numerators: FloatArray, denominators: FloatArray, counts: FloatArray) -> list[Estimate]:
    """Per column of (windows, columns) matrices, sum(num)/sum(den) with a window-bootstrap CI (MAE by lead)."""
    point = _safe_div(numerators.sum(axis=0), denominators.sum(axis=0))
    boot = _safe_div(counts @ numerators, counts @ denominators)
    n = numerators.shape[0]
    return [estimate(float(point[i]), boot[:, i], n) for i in range(point.shape[0])]
