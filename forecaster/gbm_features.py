"""Features of the site-trained gradient-boosting model, from one Window only (pure numpy).

One row per lead h = 1..H of a window. Everything comes from the Window, so training and forecasting
share one code path and nothing after the cut-off can leak in: the context (target and past covariates,
strictly before the cut-off) and the known-future covariates at the horizon's timestamps.

The label is the change from the last observed value (y[t+h] − y_last): the model learns a correction
to persistence, so a level it has never seen still gives a sane forecast.
"""

from __future__ import annotations

import numpy as np

from forecaster.windows import DAY_S, NS, Window

TARGET_LAGS = (2, 3, 5, 10, 15, 30, 60)  # steps before the last value (lag 1 is the anchor itself)
TARGET_MEANS = (5, 15, 60)
TARGET_STDS = (15, 60)
COVARIATE_DELTA = 15
# PV minus load drives a self-consuming battery; given both, their difference is a feature of its own.
SURPLUS = ("pv_power_w", "load_power_w")


class FeatureError(ValueError):
    """The window cannot be turned into features (no observed target value)."""


def anchor(target: np.ndarray) -> float:
    """The last observed target value: the persistence forecast the model corrects."""
    finite = np.flatnonzero(np.isfinite(target))
    if finite.size == 0:
        raise FeatureError("no observed target value in the context")
    return float(target[finite[-1]])


def _tail(values: np.ndarray, steps: int) -> np.ndarray:
    return values[-steps:] if values.size >= steps else values


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _nanstd(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.std()) if finite.size > 1 else float("nan")


def _lag(values: np.ndarray, k: int) -> float:
    return float(values[-k]) if values.size >= k else float("nan")


def feature_names(window: Window) -> list[str]:
    """Column names, in order, for this window's covariate schema."""
    names = ["lead", "last", "steps_since_last"]
    names += [f"lag{k}" for k in TARGET_LAGS]
    names += [f"mean{k}" for k in TARGET_MEANS] + [f"std{k}" for k in TARGET_STDS]
    names += ["day_ago", "day_ago_mean_h"]
    for key in sorted(k for k in window.past if k not in window.future):
        names += [f"{key}_last", f"{key}_delta{COVARIATE_DELTA}", f"{key}_mean60"]
    if all(k in window.past for k in SURPLUS):
        names += ["surplus_last", "surplus_mean15"]
    for key in sorted(window.future):
        names += [f"{key}_at_h", f"{key}_now"]
    return names


def window_features(window: Window) -> tuple[np.ndarray, float]:
    """(rows (H, F) in `feature_names` order, the anchor). FeatureError without an observed target."""
    y = np.asarray(window.target, dtype=float)
    last = anchor(y)
    horizon = window.horizon_steps
    leads = np.arange(1, horizon + 1, dtype=float)
    finite = np.flatnonzero(np.isfinite(y))
    shared = [last, float(y.size - 1 - finite[-1])]
    shared += [_lag(y, k) - last for k in TARGET_LAGS]
    shared += [_nanmean(_tail(y, k)) - last for k in TARGET_MEANS]
    shared += [_nanstd(_tail(y, k)) for k in TARGET_STDS]
    season = int(DAY_S * NS // window.step_ns)
    day_ago = np.full(horizon, np.nan)
    index = y.size - season + np.arange(horizon)
    ok = (index >= 0) & (index < y.size)
    day_ago[ok] = y[index[ok]] - last
    day_ago_mean = _nanmean(day_ago)
    columns = [leads, *(np.full(horizon, v) for v in shared), day_ago, np.full(horizon, day_ago_mean)]
    for key in sorted(k for k in window.past if k not in window.future):
        x = np.asarray(window.past[key], dtype=float)
        x_last = _lag(x, 1)
        columns += [
            np.full(horizon, x_last),
            np.full(horizon, x_last - _lag(x, COVARIATE_DELTA + 1)),
            np.full(horizon, _nanmean(_tail(x, 60))),
        ]
    if all(k in window.past for k in SURPLUS):
        surplus = np.asarray(window.past[SURPLUS[0]], dtype=float) - np.asarray(window.past[SURPLUS[1]], dtype=float)
        columns += [np.full(horizon, _lag(surplus, 1)), np.full(horizon, _nanmean(_tail(surplus, 15)))]
    for key in sorted(window.future):
        now = float(window.past[key][-1]) if key in window.past and len(window.past[key]) else float("nan")
        columns += [np.asarray(window.future[key], dtype=float), np.full(horizon, now)]
    return np.column_stack(columns), last


def schema_of(window: Window) -> dict[str, list[str]]:
    """The covariates a model trained on this window expects (past-only and known-future)."""
    return {
        "past": sorted(k for k in window.past if k not in window.future),
        "known": sorted(window.future),
    }
