"""The one metrics module: every forecast metric (MAE, RMSE, WQL, 80 % coverage, skill) from one
per-window form of the long, cutoff-keyed forecast frame. Pure; NaN actuals and forecasts are ignored.

Each forecast point (one model, one cut-off, one predicted step, with an actual) becomes a row of additive
terms (SUM_COLUMNS); a window (one cut-off) is the sum of its points' rows; a group of windows is the sum of
its windows' rows; every metric is a ratio of those sums. Live scoring (forecaster.scoring), the promotion
gate (forecaster.rolling), the backtest's scores.csv and the report (forecaster.report, which adds only a
bootstrap over windows: resampling windows = summing resampled rows) all use these functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]

ALL = "all"  # the key of "every regime" / "every lead bucket", everywhere
INTERVAL_80 = (0.1, 0.9)  # the levels of the 80 % interval (coverage)
DEFAULT_WQL_FLOOR_W = 100.0  # per-step floor of the WQL denominator (config: forecaster.wql_floor_w)

# Additive terms per point (then summed per window). `paired_*`: only points where the reference
# (persistence, same cut-off and step) also has a forecast, for the skill.
SUM_COLUMNS = (
    "n",
    "abs_err",
    "sq_err",
    "pinball",
    "abs_actual",
    "covered",
    "n_interval",
    "paired_abs_err",
    "ref_abs_err",
)
N, ABS_ERR, SQ_ERR, PINBALL, ABS_ACTUAL, COVERED, N_INTERVAL, PAIRED_ABS_ERR, REF_ABS_ERR = range(len(SUM_COLUMNS))
METRIC_NAMES = ("mae", "rmse", "wql", "coverage80", "skill")


def pinball(actual: np.ndarray, pred_q: np.ndarray, level: float) -> np.ndarray:
    """Pinball loss per point at one quantile level."""
    diff = np.asarray(actual, dtype=float) - np.asarray(pred_q, dtype=float)
    return np.asarray(np.maximum(level * diff, (level - 1.0) * diff))


def point_terms(
    actual: np.ndarray,
    median: np.ndarray,
    quantiles: Mapping[float, np.ndarray] | None = None,
    reference: np.ndarray | None = None,
) -> FloatArray:
    """(points, SUM_COLUMNS) terms. A point counts when its actual and median are finite; its pinball is
    the mean over the levels (all levels finite), its interval the levels INTERVAL_80 when both exist."""
    a = np.asarray(actual, dtype=float)
    m = np.asarray(median, dtype=float)
    ok = np.isfinite(a) & np.isfinite(m)
    out = np.zeros((a.size, len(SUM_COLUMNS)))
    err = np.where(ok, np.abs(a - m), 0.0)
    out[:, N] = ok
    out[:, ABS_ERR] = err
    out[:, SQ_ERR] = err**2
    out[:, ABS_ACTUAL] = np.where(ok, np.abs(a), 0.0)
    if quantiles:
        losses = np.column_stack([pinball(a, np.asarray(q, dtype=float), lv) for lv, q in quantiles.items()])
        with np.errstate(invalid="ignore"):
            mean_loss = losses.mean(axis=1)
        out[:, PINBALL] = np.where(ok & np.isfinite(mean_loss), mean_loss, 0.0)
        low, high = quantiles.get(INTERVAL_80[0]), quantiles.get(INTERVAL_80[1])
        if low is not None and high is not None:
            lo, hi = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
            has = ok & np.isfinite(lo) & np.isfinite(hi)
            out[:, N_INTERVAL] = has
            out[:, COVERED] = has & (a >= lo) & (a <= hi)
    if reference is not None:
        r = np.asarray(reference, dtype=float)
        paired = ok & np.isfinite(r)
        out[:, PAIRED_ABS_ERR] = np.where(paired, err, 0.0)
        out[:, REF_ABS_ERR] = np.where(paired, np.abs(a - r), 0.0)
    return out


def _div(num: np.ndarray, den: np.ndarray) -> FloatArray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    safe = np.where(den > 0, den, 1.0)
    return np.asarray(np.where(den > 0, num / safe, np.nan), dtype=float)


def mae_of(sums: np.ndarray) -> FloatArray:
    """Mean absolute error (W) of summed terms (last axis = SUM_COLUMNS)."""
    return _div(sums[..., ABS_ERR], sums[..., N])


def rmse_of(sums: np.ndarray) -> FloatArray:
    """Root mean squared error (W)."""
    return np.sqrt(_div(sums[..., SQ_ERR], sums[..., N]))


def wql_of(sums: np.ndarray, floor_w: float = DEFAULT_WQL_FLOOR_W) -> FloatArray:
    """fev-style weighted quantile loss: 2 x Σ mean-over-levels pinball / max(Σ|y|, floor_w x n).
    The per-step floor keeps quiet windows (|y| near 0) sane."""
    n = sums[..., N]
    return _div(2.0 * sums[..., PINBALL], np.where(n > 0, np.maximum(sums[..., ABS_ACTUAL], floor_w * n), 0.0))


def coverage_of(sums: np.ndarray) -> FloatArray:
    """Share of actuals inside [q0.1, q0.9] (0.8 expected)."""
    return _div(sums[..., COVERED], sums[..., N_INTERVAL])


def skill_of(sums: np.ndarray) -> FloatArray:
    """1 - MAE / MAE of the reference (persistence) on the same points; NaN when the reference is perfect."""
    return 1.0 - _div(sums[..., PAIRED_ABS_ERR], sums[..., REF_ABS_ERR])


def mae_by_regime(window_sums_by_regime: Mapping[str, np.ndarray]) -> dict[str, float]:
    """MAE (W) per key (metrics.ALL and each regime) of the (windows, SUM_COLUMNS) terms of its windows, as
    forecaster.rolling.backtest_window_sums gives them (the promotion gate's scores)."""
    return {k: float(mae_of(v.sum(axis=0))) for k, v in window_sums_by_regime.items()}


def metric_functions(floor_w: float = DEFAULT_WQL_FLOOR_W) -> dict[str, object]:
    """name -> function of summed terms, for every metric of METRIC_NAMES."""
    return {
        "mae": mae_of,
        "rmse": rmse_of,
        "wql": lambda sums: wql_of(sums, floor_w),
        "coverage80": coverage_of,
        "skill": skill_of,
    }


def summarize(sums: np.ndarray, floor_w: float = DEFAULT_WQL_FLOOR_W) -> dict[str, float]:
    """Every metric of one row of summed terms (a window, or the sum over a group of windows)."""
    row = np.asarray(sums, dtype=float)
    return {
        "mae": float(mae_of(row)),
        "rmse": float(rmse_of(row)),
        "wql": float(wql_of(row, floor_w)),
        "coverage80": float(coverage_of(row)),
        "skill": float(skill_of(row)),
    }


def frame_terms(
    frame: pd.DataFrame, levels: Sequence[float], quantile_column: Mapping[float, str], reference: str | None = None
) -> pd.DataFrame:
    """The long forecast frame (columns actual, median, one per level, optionally a reference median) with
    the SUM_COLUMNS terms added per row."""
    quantiles = {lv: frame[quantile_column[lv]].to_numpy(dtype=float) for lv in levels}
    ref = frame[reference].to_numpy(dtype=float) if reference is not None else None
    terms = point_terms(frame["actual"].to_numpy(dtype=float), frame["median"].to_numpy(dtype=float), quantiles, ref)
    return frame.assign(**{name: terms[:, i] for i, name in enumerate(SUM_COLUMNS)})


def window_sums(terms: pd.DataFrame, keys: Sequence[str], window: str) -> pd.DataFrame:
    """The per-window form: SUM_COLUMNS summed per (keys..., window), one row per window of each group."""
    return terms.groupby([*keys, window], sort=True)[list(SUM_COLUMNS)].sum().reset_index()


def with_reference(frame: pd.DataFrame, reference_model: str, on: Sequence[str], column: str) -> pd.DataFrame:
    """Join the reference model's median (same cut-off and step) as `column`."""
    ref = frame[frame["model"] == reference_model].drop_duplicates(list(on))
    return frame.merge(ref[[*on, "median"]].rename(columns={"median": column}), on=list(on), how="left")


# Array forms of single metrics (one group of points), defined through the same terms.


def mae(actual: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute error (NaN when nothing to compare)."""
    return float(mae_of(point_terms(actual, pred).sum(axis=0)))


def rmse(actual: np.ndarray, pred: np.ndarray) -> float:
    """Root mean squared error."""
    return float(rmse_of(point_terms(actual, pred).sum(axis=0)))


def weighted_quantile_loss(actual: np.ndarray, quantiles: Mapping[float, np.ndarray], floor_w: float) -> float:
    """WQL of one group of points; the median is the 0.5 level (interpolated when absent)."""
    if not quantiles:
        return math.nan
    levels = sorted(quantiles)
    stacked = np.vstack([np.asarray(quantiles[lv], dtype=float) for lv in levels])
    median = (
        stacked[levels.index(0.5)]
        if 0.5 in levels
        else np.array([np.interp(0.5, levels, stacked[:, i]) for i in range(stacked.shape[1])])
    )
    finite = np.isfinite(stacked).all(axis=0)
    return float(wql_of(point_terms(actual, np.where(finite, median, np.nan), quantiles).sum(axis=0), floor_w))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside [lower, upper]."""
    a = np.asarray(actual, dtype=float)
    q = {INTERVAL_80[0]: np.asarray(lower, dtype=float), INTERVAL_80[1]: np.asarray(upper, dtype=float)}
    return float(coverage_of(point_terms(a, np.zeros_like(a), q).sum(axis=0)))


def skill(mae_model: float, mae_persistence: float) -> float:
    """1 - MAE/MAE_persistence from two MAEs over the same points; NaN when persistence is perfect or missing."""
    if not np.isfinite(mae_persistence) or mae_persistence <= 0 or not np.isfinite(mae_model):
        return float("nan")
    return 1.0 - mae_model / mae_persistence
