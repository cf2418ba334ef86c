"""The backtest run-folder contract, defined once: imported by the writer (forecaster.backtest) and the
reader (forecaster.report). See docs/report.md for the meaning of every column."""

from __future__ import annotations

import re

FORECASTS_FILE = "forecasts.csv"
SCORES_FILE = "scores.csv"
MANIFEST_FILE = "manifest.json"

# Covariate variants of a backtest: what each learned model that takes covariates is given.
TARGET_ONLY = "target_only"
PAST_COVARIATES = "past_covariates"
ALL_COVARIATES = "all_covariates"  # past + the time features (without the GX's plan and the PV forecast)
PLAN_FORECAST = "plan_forecast"  # all of the above + the plan and PV forecast as issued before the cut-off
VARIANTS = (TARGET_ONLY, PAST_COVARIATES, ALL_COVARIATES, PLAN_FORECAST)
NO_VARIANT = "none"  # models that take no covariates (the baselines) are forecast once, with the target only
VARIANT_ORDER = (*VARIANTS, NO_VARIANT)

# forecasts.csv: these columns in this order, then one column per quantile level (quantile_column), then fallback.
HEAD_COLUMNS = (
    "run_id",
    "task",
    "target",
    "model",
    "model_version",
    "variant",
    "cutoff",
    "timestamp",
    "lead_steps",
    "lead_minutes",
    "lead_bucket",
    "regime",
    "regime_at_issue",
    "actual",
    "mean",
    "median",
)
FALLBACK_COLUMN = "fallback"  # 1 = persistence stood in for the model at this point (it failed)
REQUIRED_COLUMNS = (
    "cutoff",
    "timestamp",
    "model",
    "variant",
    "lead_steps",
    "lead_minutes",
    "lead_bucket",
    "regime",
    "actual",
    FALLBACK_COLUMN,
)
REQUIRED_MANIFEST_KEYS = ("run_id", "target", "unit", "base_model_is_stand_in")
QUANTILE_COLUMN = re.compile(r"^q(0?\.\d+|1\.0+|0)$")


def quantile_column(level: float) -> str:
    """0.1 -> 'q0.1' (the forecasts.csv name of a quantile level)."""
    return f"q{level:g}"


def column_level(name: str) -> float | None:
    """'q0.1' -> 0.1; None for any other column or a level outside (0, 1)."""
    if not QUANTILE_COLUMN.match(name):
        return None
    level = float(name[1:])
    return round(level, 6) if 0.0 < level < 1.0 else None
