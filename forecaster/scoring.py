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

ALL = metrics.ALL
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


def window_terms(frame: pd.DataFrame, actual: pd.Series, threshold_w: float, step_s: int) -> pd.DataFrame:
    """The per-window form (forecaster.metrics) of a ForecastFrame: one row per (model, version, horizon
    regime, issue regime, lead bucket, cut-off) with the summed metric terms; persistence is the reference."""
    labelled = label_windows(frame, actual, threshold_w, step_s)
    labelled = labelled[np.isfinite(labelled["actual"])]
    labelled = metrics.with_reference(labelled, zoo.REFERENCE, ["cutoff_ns", "ts_ns"], "reference_median")
    levels = _levels(labelled)
    terms = metrics.frame_terms(labelled, levels, {lv: quantile_field(lv) for lv in levels}, "reference_median")
    keys = ["model", "model_version", "regime_horizon", "regime_issue", "lead_bucket"]
    return metrics.window_sums(terms, keys, "cutoff_ns")


def score(frame: pd.DataFrame, actual: pd.Series, threshold_w: float, floor_w: float, step_s: int) -> list[ScoreRow]:
    """Score a ForecastFrame against gridded actuals (pd.Series: ts_ns -> W). Rows without actuals drop."""
    if frame.empty:
        return []
    windows = window_terms(frame, actual, threshold_w, step_s)
    columns = list(metrics.SUM_COLUMNS)
    rows: list[ScoreRow] = []
    for (model, version), by_model in windows.groupby(["model", "model_version"]):
        for regime_by, column in (("horizon", "regime_horizon"), ("issue", "regime_issue")):
            for regime, by_regime in [(ALL, by_model), *by_model.groupby(column)]:
                if regime == regimes.UNKNOWN or (regime_by == "issue" and regime == ALL):
                    continue
                for bucket, group in [(ALL, by_regime), *by_regime.groupby("lead_bucket")]:
                    total = group[columns].to_numpy(dtype=float).sum(axis=0)
                    values = metrics.summarize(total, floor_w)
                    rows.append(
                        ScoreRow(
                            str(model),
                            str(version),
                            regime_by,
                            str(regime),
                            str(bucket),
                            mae_w=values["mae"],
                            rmse_w=values["rmse"],
                            wql=values["wql"],
                            coverage_80=values["coverage80"],
                            skill=values["skill"],
                            n_windows=int(group["cutoff_ns"].nunique()),
                            n_points=int(total[metrics.N]),
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
