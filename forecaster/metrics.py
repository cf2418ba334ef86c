"""Pure forecast metrics in W (absolute), plus a floored weighted quantile loss. NaN actuals are ignored."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def _pair(actual: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float)
    p = np.asarray(pred, dtype=float)
    ok = np.isfinite(a) & np.isfinite(p)
    return a[ok], p[ok]


def mae(actual: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute error (NaN when nothing to compare)."""
    a, p = _pair(actual, pred)
    return float(np.mean(np.abs(a - p))) if a.size else float("nan")


def rmse(actual: np.ndarray, pred: np.ndarray) -> float:
    """Root mean squared error."""
    a, p = _pair(actual, pred)
    return float(np.sqrt(np.mean((a - p) ** 2))) if a.size else float("nan")


def pinball(actual: np.ndarray, pred_q: np.ndarray, level: float) -> np.ndarray:
    """Pinball loss per point at one quantile level."""
    diff = np.asarray(actual, dtype=float) - np.asarray(pred_q, dtype=float)
    return np.maximum(level * diff, (level - 1.0) * diff)


def weighted_quantile_loss(actual: np.ndarray, quantiles: Mapping[float, np.ndarray], floor_w: float) -> float:
    """fev-style WQL: mean over levels of 2·Σ pinball / max(Σ|y|, floor_w·n). Floors keep quiet windows sane."""
    a = np.asarray(actual, dtype=float)
    ok = np.isfinite(a)
    for values in quantiles.values():
        ok &= np.isfinite(np.asarray(values, dtype=float))
    if not ok.any() or not quantiles:
        return float("nan")
    denominator = max(float(np.sum(np.abs(a[ok]))), floor_w * int(ok.sum()))
    losses = [2.0 * float(np.sum(pinball(a[ok], np.asarray(q)[ok], lvl))) for lvl, q in quantiles.items()]
    return float(np.mean(losses)) / denominator


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside [lower, upper] (0.8 expected for the 0.1–0.9 interval)."""
    a = np.asarray(actual, dtype=float)
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    ok = np.isfinite(a) & np.isfinite(lo) & np.isfinite(hi)
    if not ok.any():
        return float("nan")
    return float(np.mean((a[ok] >= lo[ok]) & (a[ok] <= hi[ok])))


def skill(mae_model: float, mae_persistence: float) -> float:
    """1 − MAE/MAE_persistence; NaN when persistence is perfect or missing."""
    if not np.isfinite(mae_persistence) or mae_persistence <= 0 or not np.isfinite(mae_model):
        return float("nan")
    return 1.0 - mae_model / mae_persistence
