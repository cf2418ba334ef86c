"""The report's sections as document blocks (text, tables); numbers come from Tables and Narrative only."""

from __future__ import annotations

from typing import Any

import pandas as pd

from forecaster.report.document import Banner, Block, Bullets, Heading, Paragraph, Table
from forecaster.report.labels import (
    STAND_IN_TAG,
    PowerScale,
    fmt_ci,
    fmt_num,
    fmt_pct,
    fmt_ratio,
    model_label,
    series_label,
    variant_label,
)
from forecaster.report.narrative import Narrative, change_of
from forecaster.report.runfolder import RunData
from forecaster.report.stats import Estimate
from forecaster.report.tables import ALL_LEADS, Comparison, MetricRow, Significance, Tables, planned_comparisons


def metric_header(scale: PowerScale) -> list[str]:
    """Header of the metric tables, in the report's power unit."""
    return [
        "regime",
        "model",
        "variant",
        "lead",
        "windows",
        f"MAE ({scale.unit})",
        f"RMSE ({scale.unit})",
        "WQL",
        "80 % coverage",
        "skill vs persistence",
    ]


def _scaled(est: Estimate, scale: PowerScale) -> Estimate:
    return Estimate(scale.of(est.value), scale.of(est.low), scale.of(est.high))


VERDICT = {
    "better": "better",
    "worse": "worse",
    "negligible": "negligible",
    "noise": "within noise",
    "unknown": "too few windows",
}
READING_NOTE = (
    "Each value is followed by its 95 % bootstrap confidence interval over windows (cutoffs resampled with "
    "replacement, not rows). A difference is 'within noise' when the 95 % CI of the paired difference over the "
    "same windows includes zero. WQL = 2 x mean pinball loss over the quantile levels / max(mean |actual|, "
    "the run's WQL floor per step); "
    "skill = 1 - MAE / MAE of persistence on the same windows; coverage = share of actuals inside q0.1..q0.9."
)


def stand_in_banner(run: RunData) -> list[Block]:
    """The stand-in warning, repeated wherever model results appear."""
    if not run.stand_in:
        return []
    return [
        Banner(
            f"The base model of this run is a stand-in, not Chronos-2 ({run.manifest.get('base_model', '?')}), "
            "used because the real Chronos-2 weights were unreachable. Rows tagged "
            f"{STAND_IN_TAG} describe that stand-in, not Chronos-2."
        )
    ]


def summary(run: RunData, tables: Tables, resamples: int, seed: int) -> list[Block]:
    """Title, warning and one paragraph describing the run."""
    m = run.manifest
    windows = run.forecasts.drop_duplicates("cutoff")["regime"].value_counts()
    per_regime = ", ".join(f"{windows.get(r, 0)} {r}" for r in tables.regimes if r in windows)
    text = (
        f"Task {m.get('task', '?')}: {m.get('target', '?')} ({run.unit}) at {m.get('resolution', '?')} resolution, "
        f"horizon {m.get('horizon_steps', '?')} steps, context {m.get('context_steps', '?')} steps. "
        f"Backtest windows from {m.get('split', '?')} to {m.get('end', '?')}: {int(windows.sum())} windows "
        f"({per_regime}). Base model: {model_label('base', run.stand_in)} = {m.get('base_model', '?')}. "
        f"Confidence intervals: {resamples} bootstrap resamples of windows, seed {seed}. "
        f"Run created {m.get('created_utc', '?')}."
    )
    return [Heading(1, f"Backtest report: {m.get('run_id', run.path.name)}"), *stand_in_banner(run), Paragraph(text)]


def _bullets_or(items: list[str], empty: str) -> Block:
    return Bullets(items) if items else Paragraph(empty)


def findings(narrative: Narrative, has_finetuned: bool) -> list[Block]:
    """The generated 'improved / did not / covariates' section."""
    blocks: list[Block] = [Heading(2, "Findings")]
    if has_finetuned:
        blocks += [
            Heading(3, "What fine-tuning improved"),
            _bullets_or(narrative.finetune_improved, "No regime shows an improvement beyond noise."),
            Heading(3, "What fine-tuning did not improve"),
            _bullets_or(narrative.finetune_not, "Every regime improved beyond noise."),
        ]
    else:
        blocks.append(Paragraph("This run has no fine-tuned forecasts, so fine-tuning cannot be assessed."))
    blocks += [
        Heading(3, "What covariates did"),
        _bullets_or(narrative.covariates + narrative.covariate_claim, "This run has no covariate ablation."),
        Heading(3, "Against the baselines"),
        _bullets_or(narrative.baselines, "No persistence baseline in this run."),
    ]
    if narrative.caveats:
        blocks += [Heading(3, "Caveats"), Bullets(narrative.caveats)]
    blocks.append(Paragraph(READING_NOTE))
    return blocks


def metric_cells(row: MetricRow, run: RunData) -> list[str]:
    """One formatted table row of metrics with CIs."""
    return [
        row.regime,
        model_label(row.model, run.stand_in),
        variant_label(row.variant),
        row.lead_bucket,
        str(row.n_windows),
        fmt_ci(_scaled(row.mae, run.scale)),
        fmt_ci(_scaled(row.rmse, run.scale)),
        fmt_ci(row.wql, "ratio"),
        fmt_ci(row.coverage80, "pct"),
        fmt_ci(row.skill, "ratio"),
    ]


def headline_table(run: RunData, tables: Tables) -> list[Block]:
    """All regimes x models x variants at all lead times."""
    rows = [metric_cells(r, run) for r in tables.rows if r.lead_bucket == ALL_LEADS]
    return [
        Heading(2, "Metrics at all lead times"),
        *stand_in_banner(run),
        Table(metric_header(run.scale), rows, "value (95 % CI over windows); MAE and RMSE of the median forecast"),
    ]


def comparison_header(scale: PowerScale) -> list[str]:
    """Header of the paired-comparison tables."""
    return [
        "regime",
        "windows",
        f"MAE A ({scale.unit})",
        f"MAE B ({scale.unit})",
        f"B - A ({scale.unit}, 95 % CI)",
        "MAE change (95 % CI)",
        "MAE verdict",
        "WQL A",
        "WQL B",
        "WQL change (95 % CI)",
        "WQL verdict",
    ]


def _change(rel: Estimate) -> str:
    if not rel.has_ci:
        return fmt_pct(rel.value)
    return f"{fmt_pct(rel.value)} ({fmt_pct(rel.low)} to {fmt_pct(rel.high)})"


def _comparison_row(mae: Comparison, wql: Comparison | None, rule: Significance, scale: PowerScale) -> list[str]:
    r = mae.result
    cells = [
        mae.regime,
        str(mae.n_windows),
        fmt_num(scale.of(r.value_a)),
        fmt_num(scale.of(r.value_b)),
        fmt_ci(_scaled(r.diff, scale)),
        _change(r.rel),
        VERDICT[change_of(r, rule)],
    ]
    if wql is None:
        return [*cells, "n/a", "n/a", "n/a", "n/a"]
    w = wql.result
    return [*cells, fmt_ratio(w.value_a), fmt_ratio(w.value_b), _change(w.rel), VERDICT[change_of(w, rule, in_w=False)]]


def comparison_table(run: RunData, tables: Tables) -> list[Block]:
    """Paired differences (B - A on the same windows) at all lead times: one table per compared pair."""
    blocks: list[Block] = []
    for kind, a, b in planned_comparisons({(m, v) for (_r, m, v, _b) in tables.cells}):
        rows = [
            _comparison_row(mae, tables.comparison(kind, regime, a, b, metric="wql"), tables.significance, run.scale)
            for regime in tables.regimes
            if (mae := tables.comparison(kind, regime, a, b)) is not None
        ]
        if rows:
            title = f"B = {series_label(*b, run.stand_in)} against A = {series_label(*a, run.stand_in)}"
            blocks += [Heading(3, title), Table(comparison_header(run.scale), rows)]
    if not blocks:
        return []
    note = Paragraph(
        "B - A over the windows both forecast; negative = B has lower error. Verdict: 'within noise' when the "
        "95 % CI of the paired difference includes zero; 'negligible' when beyond noise but a change "
        f"{tables.significance.describe(run.scale)} (WQL: the relative part only); else 'better' or 'worse'."
    )
    return [Heading(2, "Paired comparisons (all lead times)"), *stand_in_banner(run), note, *blocks]


def bucket_tables(run: RunData, tables: Tables) -> list[Block]:
    """One table per regime: every model x variant x lead bucket."""
    blocks: list[Block] = [Heading(2, "Metrics by regime and lead bucket")]
    for regime in tables.regimes:
        rows = [metric_cells(r, run) for r in tables.rows if r.regime == regime and r.lead_bucket != ALL_LEADS]
        if rows:
            blocks += [Heading(3, f"{regime} windows"), Table(metric_header(run.scale), rows)]
    return blocks


def _gap_lines(gaps: list[dict[str, Any]]) -> tuple[str, str]:
    total = sum((pd.Timestamp(g["end"]) - pd.Timestamp(g["start"]) for g in gaps), pd.Timedelta(0))
    listed = "; ".join(f"{g['start']} to {g['end']}" for g in gaps[:10]) + (" ..." if len(gaps) > 10 else "")
    return f"{len(gaps)} gaps, {total} in total", listed or "none"


def _issue_regimes(run: RunData) -> str:
    """How the regime at forecast time relates to the regime over the horizon (e.g. 'quiet -> cycling: 4')."""
    if "regime_at_issue" not in run.forecasts.columns:
        return "not in the forecasts"
    windows = run.forecasts.drop_duplicates("cutoff")
    counts = windows.groupby(["regime_at_issue", "regime"]).size()
    return ", ".join(f"{issue} -> {regime}: {n}" for (issue, regime), n in counts.items())


def _regime_hours(data: dict[str, Any]) -> str:
    hours = data.get("regime_hours") or {}
    training, evaluation = hours.get("training") or {}, hours.get("evaluation") or {}
    names = [r for r in ("quiet", "cycling", "transition") if r in training or r in evaluation]
    return ", ".join(f"{r} {training.get(r, 0):g} h / {evaluation.get(r, 0):g} h" for r in names) or "?"


def _threshold(manifest: dict[str, Any]) -> str:
    entry = manifest.get("quiet_threshold") or {}
    value = entry.get("value_w", manifest.get("quiet_threshold_w"))
    how = entry.get("how")
    return f"{value} W" + (f" ({how})" if how else "")


def _buckets(data: dict[str, Any], resolution: str) -> str:
    have, total = data.get("target_buckets_with_data"), data.get("target_buckets")
    if have is None:
        return str(data.get("points", "?"))  # runs written before the two counts existed
    return f"{have} of {total} {resolution} buckets"


def data_table(run: RunData, tables: Tables) -> Table:
    """The data used: dataset, ranges, resolution, regime share, gaps, fine-tune settings."""
    m = run.manifest
    data = m.get("data") or {}
    gaps_summary, gaps_list = _gap_lines(list(data.get("gaps") or []))
    share = data.get("regime_share") or {}
    windows = run.forecasts.drop_duplicates("cutoff")["regime"].value_counts(normalize=True)
    ft = m.get("finetune")
    rows = [
        ["dataset", str(data.get("dataset", "?"))],
        ["series", ", ".join(sorted(map(str, (data.get("series") or {}).keys()))) or "?"],
        ["range (start / split / end)", f"{m.get('start', '?')} / {m.get('split', '?')} / {m.get('end', '?')}"],
        ["resolution", str(m.get("resolution", "?"))],
        ["target buckets with data", _buckets(data, str(m.get("resolution", "?")))],
        ["gaps", gaps_summary],
        ["gap list", gaps_list],
        [
            "regime share of the data (hours)",
            ", ".join(f"{k} {fmt_pct(float(v), signed=False)}" for k, v in share.items()) or "?",
        ],
        ["hours per regime, training / evaluation", _regime_hours(data)],
        [
            "regime share of the windows",
            ", ".join(f"{k} {fmt_pct(float(v), signed=False)}" for k, v in windows.items()),
        ],
        ["windows by regime at issue -> over the horizon", _issue_regimes(run)],
        ["quiet threshold", _threshold(m)],
        ["base model", f"{m.get('base_model', '?')}" + (f" {STAND_IN_TAG}" if run.stand_in else "")],
        ["fine-tune", ", ".join(f"{k}={v}" for k, v in ft.items()) if isinstance(ft, dict) else "none"],
        ["quantile levels", ", ".join(f"{q:g}" for q in run.quantile_levels)],
        ["lead buckets", ", ".join(tables.buckets)],
    ]
    return Table(["item", "value"], rows)
