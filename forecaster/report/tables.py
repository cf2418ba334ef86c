"""Metric tables by regime x model x variant x lead bucket, and paired comparisons, with window-bootstrap CIs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from forecaster import metrics, zoo
from forecaster.report import stats
from forecaster.report.labels import PowerScale, fmt_pct, fmt_power, model_order
from forecaster.report.runfolder import (
    REGIME_ORDER,
    RunData,
    lead_bucket_order,
    ordered,
    quantile_levels_of,
)
from forecaster.run_contract import (
    ALL_COVARIATES,
    NO_VARIANT,
    PAST_COVARIATES,
    PLAN_FORECAST,
    TARGET_ONLY,
    VARIANT_ORDER,
    VARIANTS,
)

ALL_REGIMES = metrics.ALL  # the regime key of "every window" (as in scores.csv and the gate)
ALL_LEADS = metrics.ALL
PERSISTENCE = zoo.REFERENCE
COVARIATE_VARIANTS = (PAST_COVARIATES, ALL_COVARIATES, PLAN_FORECAST)
CellKey = tuple[str, str, str, str]  # regime, model, variant, lead bucket
ComparisonKind = Literal["finetune", "covariates", "drivers"]


@dataclass(frozen=True)
class Cell:
    """Per-window sums of one cell: sorted cutoffs (int ns UTC) and a (windows, SUM_COLUMNS) matrix."""

    cutoffs: np.ndarray
    sums: stats.FloatArray


@dataclass(frozen=True)
class MetricRow:
    """Metrics of one regime x model x variant x lead bucket, with CIs over windows."""

    regime: str
    model: str
    variant: str
    lead_bucket: str
    n_windows: int
    n_points: int
    mae: stats.Estimate
    rmse: stats.Estimate
    wql: stats.Estimate
    coverage80: stats.Estimate
    skill: stats.Estimate


@dataclass(frozen=True)
class Comparison:
    """B against A on the windows both forecast: finetuned vs base, covariates vs target only, or the GX's plan
    and PV forecast added to all other covariates (kind "drivers")."""

    kind: ComparisonKind
    regime: str
    lead_bucket: str
    metric: str
    model_a: str
    variant_a: str
    model_b: str
    variant_b: str
    n_windows: int
    result: stats.PairedEstimate


@dataclass(frozen=True)
class Significance:
    """The practical-significance rule: a change beyond noise but smaller than `rel` (relative) or, for
    errors in W, smaller than `floor_w` in absolute terms, is 'negligible', not an improvement."""

    rel: float = 0.02
    floor_w: float = 5.0

    def describe(self, scale: PowerScale | None = None) -> str:
        """The rule in words."""
        return f"under {fmt_pct(self.rel, signed=False)} or under {fmt_power(self.floor_w, scale or PowerScale())}"


DEFAULT_SIGNIFICANCE = Significance()


@dataclass(frozen=True)
class Tables:
    """Everything numeric the report shows."""

    regimes: list[str]
    buckets: list[str]
    models: list[str]
    variants: list[str]
    main_variant: str
    rows: list[MetricRow]
    comparisons: list[Comparison]
    cells: dict[CellKey, Cell] = field(repr=False)
    significance: Significance = DEFAULT_SIGNIFICANCE

    def row(self, regime: str, model: str, variant: str, bucket: str = ALL_LEADS) -> MetricRow | None:
        """The metric row of one cell, or None when that cell has no windows."""
        for candidate in self.rows:
            if (candidate.regime, candidate.model, candidate.variant, candidate.lead_bucket) == (
                regime,
                model,
                variant,
                bucket,
            ):
                return candidate
        return None

    def comparison(
        self, kind: ComparisonKind, regime: str, a: tuple[str, str], b: tuple[str, str], metric: str = "mae"
    ) -> Comparison | None:
        """The all-leads comparison of B against A in one regime, or None."""
        for c in self.comparisons:
            if (c.kind, c.regime, c.lead_bucket, c.metric, c.model_a, c.variant_a, c.model_b, c.variant_b) == (
                kind,
                regime,
                ALL_LEADS,
                metric,
                *a,
                *b,
            ):
                return c
        return None


def point_errors(run: RunData) -> pd.DataFrame:
    """One row per forecast point with an actual and a median, with the terms of forecaster.metrics
    (persistence at the same cutoff and timestamp is the skill reference)."""
    frame = run.forecasts
    frame = frame[np.isfinite(frame["actual"]) & np.isfinite(frame["median"])].copy()
    frame["n"] = 1.0  # kept for the lead curves (MAE per lead step)
    frame = metrics.with_reference(frame, PERSISTENCE, ["cutoff", "timestamp"], "reference_median")
    columns = quantile_levels_of(list(run.forecasts.columns))
    return metrics.frame_terms(frame, list(run.quantile_levels), columns, "reference_median")


def _qcol(run: RunData, level: float) -> str:
    return quantile_levels_of(list(run.forecasts.columns))[level]


def interval_columns(run: RunData) -> tuple[str | None, str | None]:
    """Columns of the 80 % interval (levels 0.1 and 0.9) when both are present."""
    have = {round(level, 6) for level in run.quantile_levels}
    if 0.1 in have and 0.9 in have:
        return _qcol(run, 0.1), _qcol(run, 0.9)
    return None, None


def window_cells(points: pd.DataFrame) -> dict[CellKey, Cell]:
    """Per-window sums for every cell, including the 'overall' regime and the 'all' lead bucket."""
    columns = list(metrics.SUM_COLUMNS)
    keys = ["regime", "model", "variant", "lead_bucket", "cutoff"]
    by_bucket = points.groupby(keys, sort=False)[columns].sum().reset_index()  # small: one row per window x cell
    all_leads = by_bucket.groupby(["regime", "model", "variant", "cutoff"], sort=False)[columns].sum().reset_index()
    both = pd.concat([by_bucket, all_leads.assign(lead_bucket=ALL_LEADS)], ignore_index=True)
    expanded = pd.concat([both, both.assign(regime=ALL_REGIMES)], ignore_index=True)
    per_window = expanded.groupby(keys, sort=True)[columns].sum()
    cells: dict[CellKey, Cell] = {}
    for key, group in per_window.groupby(level=[0, 1, 2, 3], sort=True):
        cutoffs = pd.DatetimeIndex(group.index.get_level_values("cutoff")).as_unit("ns").asi8
        cells[(str(key[0]), str(key[1]), str(key[2]), str(key[3]))] = Cell(cutoffs, group.to_numpy(dtype=float))
    return cells


def align(a: Cell, b: Cell) -> tuple[stats.FloatArray, stats.FloatArray]:
    """The sums of A and B restricted to the windows both have, in the same order."""
    _common, index_a, index_b = np.intersect1d(a.cutoffs, b.cutoffs, assume_unique=True, return_indices=True)
    return a.sums[index_a], b.sums[index_b]


def metric_row(key: CellKey, cells: dict[CellKey, Cell], seed: int, resamples: int, floor_w: float) -> MetricRow:
    """Metrics of one cell with CIs (skill against persistence on the same points; none for persistence)."""
    cell = cells[key]
    n = cell.sums.shape[0]
    counts = stats.resample_counts(n, resamples, seed, "|".join(key))
    estimates = stats.metric_estimates(cell.sums, counts, floor_w)
    return MetricRow(
        *key,
        n_windows=n,
        n_points=int(cell.sums[:, metrics.N].sum()),
        mae=estimates["mae"],
        rmse=estimates["rmse"],
        wql=estimates["wql"],
        coverage80=estimates["coverage80"],
        skill=estimates["skill"] if key[1] != PERSISTENCE else stats.NAN_ESTIMATE,
    )


def planned_comparisons(
    pairs: Iterable[tuple[str, str]],
) -> list[tuple[ComparisonKind, tuple[str, str], tuple[str, str]]]:
    """Which (model, variant) pairs to compare: finetuned vs base per variant; for every model forecast with
    covariates, each covariate variant vs target only, and "+ plan and forecast" vs "+ all covariates" (what
    the known-future drivers added)."""
    present = set(pairs)
    plans: list[tuple[ComparisonKind, tuple[str, str], tuple[str, str]]] = []
    for variant in VARIANT_ORDER:
        if ("base", variant) in present and ("finetuned", variant) in present:
            plans.append(("finetune", ("base", variant), ("finetuned", variant)))
    for model in ordered(sorted({m for m, _v in present}), model_order()):
        for variant in COVARIATE_VARIANTS:
            if (model, TARGET_ONLY) in present and (model, variant) in present:
                plans.append(("covariates", (model, TARGET_ONLY), (model, variant)))
        if (model, ALL_COVARIATES) in present and (model, PLAN_FORECAST) in present:
            plans.append(("drivers", (model, ALL_COVARIATES), (model, PLAN_FORECAST)))
    return plans


def compare(
    cells: dict[CellKey, Cell], seed: int, resamples: int, *, regimes: list[str], buckets: list[str], floor_w: float
) -> list[Comparison]:
    """Every planned comparison in every regime and lead bucket, for MAE and WQL."""
    plans = planned_comparisons({(m, v) for (_r, m, v, _b) in cells})
    out: list[Comparison] = []
    for kind, a, b in plans:
        for regime in regimes:
            for bucket in [ALL_LEADS, *buckets]:
                cell_a, cell_b = cells.get((regime, *a, bucket)), cells.get((regime, *b, bucket))
                if cell_a is None or cell_b is None:
                    continue
                sums_a, sums_b = align(cell_a, cell_b)
                n = sums_a.shape[0]
                if n == 0:
                    continue
                counts = stats.resample_counts(n, resamples, seed, f"{regime}|{bucket}|{a}|{b}")
                results = stats.paired_estimates(sums_a, sums_b, counts, ("mae", "wql"), floor_w)
                for metric, result in results.items():
                    out.append(Comparison(kind, regime, bucket, metric, *a, *b, n, result))
    return out


def main_variant_of(pairs: set[tuple[str, str]]) -> str:
    """The richest variant both base and finetuned have (else the richest any forecasting model has)."""
    for variant in reversed(VARIANTS):
        if ("base", variant) in pairs and ("finetuned", variant) in pairs:
            return variant
    for variant in reversed(VARIANTS):
        if any(v == variant for _m, v in pairs):
            return variant
    return NO_VARIANT


def build_tables(
    run: RunData, seed: int = 0, resamples: int = 1000, significance: Significance = DEFAULT_SIGNIFICANCE
) -> Tables:
    """All metric rows and comparisons of a run."""
    floor_w = run.wql_floor_w
    points = point_errors(run)
    cells = window_cells(points)
    regimes = [*ordered(sorted(map(str, points["regime"].unique())), REGIME_ORDER), ALL_REGIMES]
    buckets = lead_bucket_order(points) if not points.empty else []
    pairs = {(m, v) for (_r, m, v, _b) in cells}
    models = ordered(sorted({m for m, _v in pairs}), model_order())
    variants = ordered(sorted({v for _m, v in pairs}), VARIANT_ORDER)
    rows = []
    for regime in regimes:
        for model in models:
            for variant in variants:
                for bucket in [ALL_LEADS, *buckets]:
                    if (regime, model, variant, bucket) in cells:
                        rows.append(metric_row((regime, model, variant, bucket), cells, seed, resamples, floor_w))
    comparisons = compare(cells, seed, resamples, regimes=regimes, buckets=buckets, floor_w=floor_w)
    return Tables(regimes, buckets, models, variants, main_variant_of(pairs), rows, comparisons, cells, significance)


@dataclass(frozen=True)
class LeadCurve:
    """MAE by lead time for one regime x model x variant, with window-bootstrap CIs."""

    lead_minutes: list[float]
    mae: list[stats.Estimate]


def lead_curve(points: pd.DataFrame, regime: str, model: str, variant: str, *, seed: int, resamples: int) -> LeadCurve:
    """MAE per lead step (x in minutes) over the windows of a regime ('overall' = all windows)."""
    sub = points[(points["model"] == model) & (points["variant"] == variant)]
    if regime != ALL_REGIMES:
        sub = sub[sub["regime"] == regime]
    if sub.empty:
        return LeadCurve([], [])
    num = sub.pivot_table(index="cutoff", columns="lead_steps", values="abs_err", aggfunc="sum", fill_value=0.0)
    den = sub.pivot_table(index="cutoff", columns="lead_steps", values="n", aggfunc="sum", fill_value=0.0)
    minutes = sub.groupby("lead_steps")["lead_minutes"].first().reindex(num.columns)
    counts = stats.resample_counts(num.shape[0], resamples, seed, f"lead|{regime}|{model}|{variant}")
    estimates = stats.ratio_by_column(num.to_numpy(dtype=float), den.to_numpy(dtype=float), counts)
    return LeadCurve([float(m) for m in minutes], estimates)
