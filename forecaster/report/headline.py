"""The report's first screen: the headline figure (skill vs persistence per regime for every model, with
95 % intervals) and the verdict table in plain words, with whether each regime had enough data."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure

from forecaster.report import plots
from forecaster.report.document import Block, Image, Paragraph, Table
from forecaster.report.labels import fmt_pct, fmt_power, fmt_ratio, model_label, series_label, variant_label
from forecaster.report.narrative import FEW_WINDOWS, change_of
from forecaster.report.runfolder import RunData
from forecaster.report.stats import Estimate
from forecaster.report.tables import ALL_REGIMES, PERSISTENCE, Comparison, MetricRow, Tables
from forecaster.run_contract import ALL_COVARIATES, PAST_COVARIATES, PLAN_FORECAST, TARGET_ONLY

MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")
SKILL_FLOOR = -1.0  # skills below this are drawn at the edge, with their value written beside them
VERDICT_HEADER = ["regime", "windows", "fine-tuned vs base", "best model vs persistence", "what covariates did"]


def on_screen(tables: Tables) -> list[tuple[str, str]]:
    """Every model but the reference, each in the main variant when it has one, else with no variant."""
    return [(m, v) for m, v in plots.models_to_draw(tables) if m != PERSISTENCE]


def windows_in(tables: Tables, regime: str) -> int:
    """Windows scored in a regime (the largest count over its models)."""
    return max((r.n_windows for r in tables.rows if r.regime == regime and r.lead_bucket == "all"), default=0)


def data_flag(n: int) -> str:
    """Whether a regime had enough windows, in words."""
    if n < 2:
        return f"{n}: too few for an interval"
    if n < FEW_WINDOWS:
        return f"{n}: few, wide intervals"
    return f"{n}: enough"


def _regime_name(regime: str) -> str:
    return "all windows" if regime == ALL_REGIMES else regime


def headline_figure(run: RunData, tables: Tables, out: Path) -> plots.Plot:
    """Skill vs persistence per regime (rows) for every model (markers), with 95 % CIs over windows."""
    pairs = on_screen(tables)
    regimes = tables.regimes
    fig = Figure(figsize=(11.0, 0.55 + 0.62 * len(regimes) + 0.22 * len(pairs)), layout="constrained")
    ax = fig.subplots()
    step = 0.72 / max(1, len(pairs))
    lowest = SKILL_FLOOR
    for j, (model, variant) in enumerate(pairs):
        xs, ys, lo, hi = [], [], [], []
        for i, regime in enumerate(regimes):
            row = tables.row(regime, model, variant)
            if row is None or not math.isfinite(row.skill.value):
                continue
            y = i + (j - (len(pairs) - 1) / 2) * step
            value = max(row.skill.value, SKILL_FLOOR)
            if row.skill.value < SKILL_FLOOR:
                ax.annotate(fmt_ratio(row.skill.value), (SKILL_FLOOR, y), xytext=(4, -3), textcoords="offset points",
                            fontsize=8)  # fmt: skip
            xs.append(value)
            ys.append(y)
            low = row.skill.low if row.skill.has_ci else row.skill.value
            high = row.skill.high if row.skill.has_ci else row.skill.value
            lo.append(value - max(low, SKILL_FLOOR))
            hi.append(max(high, SKILL_FLOOR) - value)
        if not xs:
            continue
        ax.errorbar(
            xs,
            ys,
            xerr=[lo, hi],
            fmt=MARKERS[j % len(MARKERS)],
            color=plots.color_of(model, tables),
            capsize=3,
            ms=6,
            lw=1.4,
            label=series_label(model, variant, run.stand_in),
        )
    ax.axvline(0.0, color="black", lw=1.0, ls="--")
    ax.text(0.0, -0.6, " persistence", fontsize=8, va="bottom")
    ax.set_yticks(
        range(len(regimes)),
        [f"{_regime_name(r)}\n{windows_in(tables, r)} windows" for r in regimes],
    )
    ax.set_ylim(len(regimes) - 0.5, -0.7)
    left = max(lowest, min([*ax.get_xlim()[:1], -0.1]))
    ax.set_xlim(left, max(ax.get_xlim()[1], 0.1))
    ax.set_xlabel("skill vs persistence = 1 - MAE / MAE of persistence on the same points (> 0: better; bars: 95 % CI)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle("Does any model beat persistence, per regime?", fontsize=11)
    path = plots.save(fig, out / "headline_skill.png", run.stand_in)
    return plots.Plot(path, "Skill vs persistence by regime", "")


def _finetune_cell(run: RunData, tables: Tables, regime: str) -> str:
    if "finetuned" not in tables.models or "base" not in tables.models:
        return "no fine-tuned model in this run"
    v = tables.main_variant
    c = tables.comparison("finetune", regime, ("base", v), ("finetuned", v))
    if c is None:
        return "not compared (no shared windows)"
    return _change_words(c, "", run, tables)


VERDICT_WORDS = {
    "better": "better",
    "worse": "worse",
    "negligible": "no practical difference",
    "noise": "within noise",
    "unknown": "too few windows to tell",
}


def _change_words(c: Comparison, subject: str, run: RunData, tables: Tables) -> str:
    """'[subject: ]verdict, MAE a -> b (rel)' for B against A."""
    r = c.result
    verdict = VERDICT_WORDS[change_of(r, tables.significance)]
    numbers = f"MAE {fmt_power(r.value_a, run.scale)} \u2192 {fmt_power(r.value_b, run.scale)} ({fmt_pct(r.rel.value)})"
    return f"{subject + ': ' if subject else ''}{verdict}, {numbers}"


def _skill_words(row: MetricRow, run: RunData) -> str:
    skill: Estimate = row.skill
    who = model_label(row.model, run.stand_in)
    if not skill.has_ci:
        return f"{who}: skill {fmt_ratio(skill.value)} (too few windows for an interval)"
    ci = f"skill {fmt_ratio(skill.value)}, CI {fmt_ratio(skill.low)} to {fmt_ratio(skill.high)}"
    if skill.low > 0:
        return f"{who} beats persistence ({ci})"
    if skill.high < 0:
        return f"no model beats persistence; best is {who} ({ci})"
    return f"best, {who}, is within noise of persistence ({ci})"


def _best_cell(run: RunData, tables: Tables, regime: str) -> str:
    rows = [tables.row(regime, m, v) for m, v in on_screen(tables)]
    scored = [r for r in rows if r is not None and math.isfinite(r.skill.value)]
    if not scored:
        return "no model to compare with persistence"
    return _skill_words(max(scored, key=lambda r: r.skill.value), run)


def _covariates_cell(run: RunData, tables: Tables, regime: str) -> str:
    for model in ("finetuned", "base", *tables.models):
        for variant in (PLAN_FORECAST, ALL_COVARIATES, PAST_COVARIATES):
            c = tables.comparison("covariates", regime, (model, TARGET_ONLY), (model, variant))
            if c is not None:
                who = f"{variant_label(variant).lstrip('+ ')}, {model_label(model, run.stand_in)}"
                return _change_words(c, who, run, tables)
    return "no covariate ablation in this run"


def verdict_rows(run: RunData, tables: Tables) -> list[list[str]]:
    """One row per regime (and all windows): the answers in plain words."""
    return [
        [
            _regime_name(regime),
            data_flag(windows_in(tables, regime)),
            _finetune_cell(run, tables, regime),
            _best_cell(run, tables, regime),
            _covariates_cell(run, tables, regime),
        ]
        for regime in tables.regimes
    ]


def first_screen(run: RunData, tables: Tables, out: Path) -> list[Block]:
    """The headline figure and the verdict table (what an engineer reads in one minute)."""
    figure = headline_figure(run, tables, out)
    rule = tables.significance.describe(run.scale)
    lead = Paragraph(
        f"Verdicts compare MAE on the same windows: 'within noise' = the 95 % CI of the difference includes 0; "
        f"'no practical difference' = beyond noise but {rule}. Details below (click to open)."
    )
    return [
        Image(figure.path, figure.title, "", html_id="headline"),
        Table(VERDICT_HEADER, verdict_rows(run, tables), html_id="verdict"),
        lead,
    ]
