"""Regimes over a backtest's series: the quiet threshold from the training range, each cut-off's labels
(horizon regime and regime at issue) and the hours of data per regime."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecaster import regimes
from forecaster.backtest.plan import Plan, pre_split_series
from forecaster.config import ForecasterSettings
from forecaster.regimes import QuietThreshold, quiet_threshold
from forecaster.rolling import actual_after
from forecaster.scoring import ISSUE_TAIL_S
from forecaster.windows import grid_times


def training_threshold(series: dict[str, np.ndarray], plan: Plan, settings: ForecasterSettings) -> QuietThreshold:
    """The quiet threshold from the target before the split (the training range), unless overridden."""
    pre, _start = pre_split_series(series, plan)
    return quiet_threshold(pre[plan.task.target], settings.quiet_fraction, settings.quiet_threshold_w)


def label(
    frame: pd.DataFrame, series: dict[str, np.ndarray], plan: Plan, threshold_w: float
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Add actual, regime (horizon actuals) and regime_at_issue (last 15 min before the cut-off)."""
    task = plan.task
    target = series[task.target]
    actual = pd.Series(target, index=grid_times(plan.read_start_ns, plan.step_ns, plan.n_steps))
    tail = max(1, ISSUE_TAIL_S // task.resolution_s)
    horizon: dict[int, str] = {}
    issue: dict[int, str] = {}
    for cutoff in frame["cutoff_ns"].unique():
        c = int(cutoff)
        values = actual_after(target, plan.read_start_ns, plan.step_ns, c, task.horizon_steps)
        horizon[c] = regimes.horizon_regime(values, threshold_w)
        idx = plan.index(c)
        issue[c] = regimes.issue_regime(target[max(0, idx - tail) : idx], threshold_w, tail)
    frame = frame.assign(
        actual=frame["ts_ns"].map(actual).astype(float),
        regime=frame["cutoff_ns"].map(horizon),
        regime_at_issue=frame["cutoff_ns"].map(issue),
    )
    return frame, horizon


def data_by_regime(series: dict[str, np.ndarray], plan: Plan, threshold_w: float) -> dict[str, Any]:
    """Hours of target data per regime before the split (training) and from it on (evaluation), and each
    regime's share of all those hours (the share of the DATA, not of the scored windows)."""
    target, task = series[plan.task.target], plan.task
    lo, split = plan.index(plan.start_ns), plan.index(plan.split_ns)
    hours = {
        "training": regimes.regime_hours(target[lo:split], task.resolution_s, task.horizon_steps, threshold_w),
        "evaluation": regimes.regime_hours(target[split:], task.resolution_s, task.horizon_steps, threshold_w),
    }
    total = {r: hours["training"][r] + hours["evaluation"][r] for r in regimes.REGIMES}
    return {"regime_hours": hours, "regime_share": regimes.shares(total)}
