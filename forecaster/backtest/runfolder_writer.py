"""Write a backtest run folder in the contract of forecaster/run_contract.py (read by forecaster/report):
forecasts.csv (one row per model, variant, cut-off and predicted step), scores.csv, manifest.json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster.frame import field_level
from forecaster.run_contract import (
    FALLBACK_COLUMN,
    FORECASTS_FILE,
    HEAD_COLUMNS,
    MANIFEST_FILE,
    NO_VARIANT,
    SCORES_FILE,
    quantile_column,
)
from forecaster.scoring import score


def iso_column(ts_ns: pd.Series) -> pd.Series:
    """int ns -> 'YYYY-MM-DDTHH:MM:SSZ' strings."""
    return pd.to_datetime(ts_ns.astype("int64"), unit="ns", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def contract_frame(frame: pd.DataFrame, run_id: str, step_s: int) -> pd.DataFrame:
    """A labelled ForecastFrame (+ variant, actual, regime, regime_at_issue) in the run-folder contract."""
    head = pd.DataFrame(
        {
            "run_id": run_id,
            "task": frame["task"],
            "target": frame["target"],
            "model": frame["model"],
            "model_version": frame["model_version"],
            "variant": frame["variant"],
            "cutoff": iso_column(frame["cutoff_ns"]),
            "timestamp": iso_column(frame["ts_ns"]),
            "lead_steps": (frame["lead_s"] // step_s).astype(int),
            "lead_minutes": frame["lead_s"] / 60.0,
            "lead_bucket": frame["lead_bucket"],
            "regime": frame["regime"],
            "regime_at_issue": frame["regime_at_issue"],
            "actual": frame["actual"],
            "mean": frame["mean"],
            "median": frame["median"],
        }
    )
    out = head[list(HEAD_COLUMNS)].copy()
    for column in frame.columns:
        level = field_level(column)
        if level is not None:
            out[quantile_column(level)] = frame[column].to_numpy()
    out[FALLBACK_COLUMN] = (frame["fallback"].astype(str) != "").astype(int).to_numpy()
    return out


def score_table(
    frame: pd.DataFrame, actual: pd.Series, threshold_w: float, floor_w: float, step_s: int
) -> pd.DataFrame:
    """scores.csv: forecaster.scoring per variant (models forecast per covariate variant are scored with
    persistence as the skill reference on the same windows; the models without variant once, 'none')."""
    parts = []
    fixed = frame[frame["variant"] == NO_VARIANT]
    for variant, part in frame[frame["variant"] != NO_VARIANT].groupby("variant", sort=True):
        mine = set(part["model"])
        rows = score(pd.concat([part, fixed]), actual, threshold_w, floor_w, step_s)
        parts.append(pd.DataFrame([asdict(r) for r in rows if r.model in mine]).assign(variant=variant))
    rows = score(fixed, actual, threshold_w, floor_w, step_s)
    parts.append(pd.DataFrame([asdict(r) for r in rows]).assign(variant=NO_VARIANT))
    table = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    first = ["model", "model_version", "variant", "regime_by", "regime", "lead_bucket"]
    return table[first + [c for c in table.columns if c not in first]]


def gaps(target: np.ndarray, grid_start_ns: int, step_ns: int, min_steps: int, limit: int = 50) -> list[dict[str, str]]:
    """Runs of at least `min_steps` buckets without target data, as {start, end} (end exclusive)."""
    missing = ~np.isfinite(np.asarray(target, dtype=float))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], missing.astype(int), [0]])))
    out = []
    for lo, hi in zip(edges[::2], edges[1::2], strict=True):
        if hi - lo >= min_steps:
            out.append({"start": _iso(grid_start_ns + lo * step_ns), "end": _iso(grid_start_ns + hi * step_ns)})
    return out[:limit]


def _iso(ts_ns: int) -> str:
    return pd.Timestamp(int(ts_ns), unit="ns", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def regime_share(windows: Mapping[int, str]) -> dict[str, float]:
    """Share of the scored windows (cut-offs) per horizon regime (manifest data.window_share)."""
    labels = pd.Series(list(windows.values()), dtype=str)
    if labels.empty:
        return {}
    return {str(k): round(float(v), 4) for k, v in labels.value_counts(normalize=True).sort_index().items()}


def write_run_folder(run_dir: Path, forecasts: pd.DataFrame, scores: pd.DataFrame, manifest: dict[str, Any]) -> None:
    """Write the three files (written to temporary names first, then renamed)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, write in (
        (FORECASTS_FILE, lambda p: forecasts.to_csv(p, index=False)),
        (SCORES_FILE, lambda p: scores.to_csv(p, index=False)),
        (MANIFEST_FILE, lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")),
    ):
        tmp = run_dir / f".{name}.tmp"
        write(tmp)
        tmp.replace(run_dir / name)
