"""Pure scoring: forecasts beside actuals, labelled by regime, reduced to metrics per group.

Every (model, cut-off) window is labelled twice: by its horizon's actuals (`regime_by=horizon`:
quiet / cycling / transition) and by the regime at issue time (`regime_by=issue`: quiet / cycling).
Scores are per regime and overall (`regime=all`), per lead bucket and overall (`lead_bucket=all`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bess_common.sample import Sample
from bess_common.schema import FORECAST_SCORE
from forecaster import metrics, regimes, zoo
from forecaster.frame import field_level, quantile_field

ALL = "all"
ISSUE_TAIL_S = 900  # the regime at issue time is read from the last 15 minutes before the cut-off


@dataclass(frozen=True)
class ScoreRow:
    """Metrics of one group of forecast points."""

    model: str
    model_version: str
    regime_by: str
    regime: str
    lead_bucket: str
    mae_w: float
    rmse_w: float
    wql: float
    coverage_80: float
    skill: float
    n_windows: int
    n_points: int


def label_windows(frame: pd.DataFrame, actual: pd.Series, threshold_w: float, step_s: int) -> pd.DataFrame:
    """Add `actual`, `regime_horizon` and `regime_issue` columns (actual indexed by ts_ns, gridded)."""
    out = frame.copy()
    out["actual"] = out["ts_ns"].map(actual).astype(float)
    tail = max(1, ISSUE_TAIL_S // step_s)
    step_ns = step_s * 1_000_000_000
    horizon_labels = {}
    issue_labels = {}
    for (model, cutoff), group in out.groupby(["model", "cutoff_ns"]):
        horizon_labels[(model, cutoff)] = regimes.horizon_regime(
            group.sort_values("ts_ns")["actual"].to_numpy(), threshold_w
        )
        if cutoff not in issue_labels:
            before = actual.reindex(cutoff - step_ns * np.arange(tail, 0, -1))
            issue_labels[cutoff] = regimes.regime_of(before.to_numpy(dtype=float), threshold_w)
    keys = list(zip(out["model"], out["cutoff_ns"], strict=True))
    out["regime_horizon"] = [horizon_labels[k] for k in keys]
    out["regime_issue"] = [issue_labels[c] for c in out["cutoff_ns"]]
    return out


def _levels(frame: pd.DataFrame) -> list[float]:
    return sorted(lv for lv in (field_level(c) for c in frame.columns) if lv is not None)


def _score_group(group: pd.DataFrame, levels: list[float], floor_w: float) -> dict[str, float]:
    y = group["actual"].to_numpy(dtype=float)
    median = group["median"].to_numpy(dtype=float)
    quantiles = {lv: group[quantile_field(lv)].to_numpy(dtype=float) for lv in levels}
    lo, hi = quantiles.get(0.1), quantiles.get(0.9)
    mae = metrics.mae(y, median)
    mae_p = metrics.mae(y, group["persistence_median"].to_numpy(dtype=float))
    return {
        "mae_w": mae,
        "rmse_w": metrics.rmse(y, median),
        "wql": metrics.weighted_quantile_loss(y, quantiles, floor_w),
        "coverage_80": metrics.coverage(y, lo, hi) if lo is not None and hi is not None else float("nan"),
        "skill": metrics.skill(mae, mae_p),
    }


def score(frame: pd.DataFrame, actual: pd.Series, threshold_w: float, floor_w: float, step_s: int) -> list[ScoreRow]:
    """Score a ForecastFrame against gridded actuals (pd.Series: ts_ns -> W). Rows without actuals drop."""
    if frame.empty:
        return []
    labelled = label_windows(frame, actual, threshold_w, step_s)
    labelled = labelled[np.isfinite(labelled["actual"])]
    persistence = labelled[labelled["model"] == zoo.REFERENCE].set_index(["cutoff_ns", "ts_ns"])["median"]
    labelled = labelled.join(persistence.rename("persistence_median"), on=["cutoff_ns", "ts_ns"])
    levels = _levels(labelled)
    rows: list[ScoreRow] = []
    for (model, version), by_model in labelled.groupby(["model", "model_version"]):
        for regime_by, column in (("horizon", "regime_horizon"), ("issue", "regime_issue")):
            for regime, by_regime in [(ALL, by_model), *by_model.groupby(column)]:
                if regime == regimes.UNKNOWN or (regime_by == "issue" and regime == ALL):
                    continue
                for bucket, group in [(ALL, by_regime), *by_regime.groupby("lead_bucket")]:
                    values = _score_group(group, levels, floor_w)
                    rows.append(
                        ScoreRow(
                            str(model),
                            str(version),
                            regime_by,
                            str(regime),
                            str(bucket),
                            n_windows=int(group["cutoff_ns"].nunique()),
                            n_points=len(group),
                            **values,
                        )
                    )
    return rows


def score_samples(rows: list[ScoreRow], site: str, task: str, *, period: str, run: str, ts_ns: int) -> list[Sample]:
    """forecast_score points; same (period end, tags) -> overwrite on re-scoring."""
    samples = []
    for r in rows:
        tags = {
            "site": site,
            "task": task,
            "model": r.model,
            "model_version": r.model_version,
            "regime_by": r.regime_by,
            "regime": r.regime,
            "lead_bucket": r.lead_bucket,
            "period": period,
            "run": run,
        }
        fields: dict[str, float | int | str] = {
            "mae_w": r.mae_w,
            "rmse_w": r.rmse_w,
            "wql": r.wql,
            "coverage_80": r.coverage_80,
            "skill": r.skill,
            "n_windows": r.n_windows,
            "n_points": r.n_points,
        }
        samples.append(Sample(FORECAST_SCORE, tags, fields, ts_ns))
    return samples
