"""Sentences generated from the numbers: what fine-tuning improved, what it did not, what covariates did.

No sentence states a result on its own: every verb ("cut", "raised", "within noise", "confirmed") is chosen
from a confidence interval. A difference is "within noise" when the 95 % CI of the paired difference over
the same windows includes zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from forecaster.report.labels import PowerScale, fmt_num, fmt_pct, fmt_power, fmt_ratio, model_label, variant_label
from forecaster.report.runfolder import RunData
from forecaster.report.stats import Estimate, PairedEstimate
from forecaster.report.tables import (
    ALL_REGIMES,
    COVARIATE_VARIANTS,
    DEFAULT_SIGNIFICANCE,
    PERSISTENCE,
    Comparison,
    ComparisonKind,
    Significance,
    Tables,
    interval_columns,
)
from forecaster.run_contract import ALL_COVARIATES, NO_VARIANT, PAST_COVARIATES, PLAN_FORECAST, TARGET_ONLY

EARLIER_COVARIATE_FINDING = 0.26  # the team's earlier finding: covariates cut cycling MAE by 26 %
FEW_WINDOWS = 10
NOMINAL_COVERAGE = 0.8
Change = Literal["better", "worse", "negligible", "noise", "unknown"]
Verdict = Literal["confirmed", "exceeded", "not confirmed", "inconclusive", "cannot be checked"]


@dataclass(frozen=True)
class Narrative:
    """The generated findings, one list of sentences per heading."""

    finetune_improved: list[str]
    finetune_not: list[str]
    covariates: list[str]
    covariate_claim: list[str]
    baselines: list[str]
    caveats: list[str]


def change_of(result: PairedEstimate, rule: Significance = DEFAULT_SIGNIFICANCE, in_w: bool = True) -> Change:
    """One of better / worse / negligible / within noise (or unknown: too few windows) for B against A.
    Within noise when the 95 % CI of the paired difference includes zero; negligible when beyond noise but
    under the practical threshold (`in_w`: the metric is in W, so the absolute floor applies)."""
    diff = result.diff
    if not diff.has_ci:
        return "unknown"
    if diff.low <= 0.0 <= diff.high:
        return "noise"
    small_rel = math.isfinite(result.rel.value) and abs(result.rel.value) < rule.rel
    small_abs = in_w and abs(diff.value) < rule.floor_w
    if small_rel or small_abs:
        return "negligible"
    return "better" if diff.high < 0 else "worse"


def claim_verdict(rel: Estimate, claimed_reduction: float = EARLIER_COVARIATE_FINDING) -> Verdict:
    """Confront a claimed relative reduction with the CI of the measured relative change B/A − 1."""
    if not rel.has_ci:
        return "cannot be checked"
    low_red, high_red = -rel.high, -rel.low
    if high_red < claimed_reduction:
        return "not confirmed"
    if low_red <= 0:
        return "inconclusive"
    return "exceeded" if low_red > claimed_reduction else "confirmed"


def _ci_w(est: Estimate, scale: PowerScale) -> str:
    return f"95 % CI {fmt_num(scale.of(est.low))} to {fmt_num(scale.of(est.high))} {scale.unit}"


def _ci_pct(est: Estimate) -> str:
    return f"95 % CI {fmt_pct(est.low)} to {fmt_pct(est.high)}"


def _rel(rel: Estimate) -> str:
    return f"{fmt_pct(rel.value)}, {_ci_pct(rel)}"


def _where(regime: str) -> str:
    return "Over all windows" if regime == ALL_REGIMES else f"In {regime} windows"


def mae_sentence(c: Comparison, who: str, scale: PowerScale, rule: Significance = DEFAULT_SIGNIFICANCE) -> str:
    """One sentence on an MAE comparison, its verb chosen by the CI of the paired difference and the rule."""
    r = c.result
    a, b, n = fmt_power(r.value_a, scale), fmt_power(r.value_b, scale), c.n_windows
    change = change_of(r, rule)
    if change == "negligible":
        return (
            f"{_where(c.regime)} {who} changed MAE by a negligible amount: {a} before, {b} after "
            f"({fmt_pct(r.rel.value)}; {rule.describe(scale)} counts as negligible; {n} windows)."
        )
    if change == "better":
        return (
            f"{_where(c.regime)} {who} cut MAE from {a} to {b} ({fmt_pct(r.rel.value)}, {_ci_pct(r.rel)}; {n} windows)."
        )
    if change == "worse":
        return f"{_where(c.regime)} {who} raised MAE from {a} to {b} ({_rel(r.rel)}; {n} windows)."
    if change == "noise":
        return (
            f"{_where(c.regime)} the MAE difference ({fmt_power(r.diff.value, scale)}, {_ci_w(r.diff, scale)}; "
            f"{n} windows) is within noise: {a} before, {b} after."
        )
    return f"{_where(c.regime)} there are too few windows ({n}) to tell: MAE {a} before, {b} after."


def wql_sentence(c: Comparison, who: str, rule: Significance = DEFAULT_SIGNIFICANCE) -> str | None:
    """A sentence on the probabilistic forecast (WQL), only when the change is beyond noise and not negligible."""
    change = change_of(c.result, rule, in_w=False)
    if change not in ("better", "worse"):
        return None
    verb = "improved" if change == "better" else "worsened"
    r = c.result
    return (
        f"{_where(c.regime)} {who} {verb} the weighted quantile loss from {fmt_ratio(r.value_a)} to "
        f"{fmt_ratio(r.value_b)} ({fmt_pct(r.rel.value)}, {_ci_pct(r.rel)})."
    )


def finetune_findings(tables: Tables, stand_in: bool, scale: PowerScale) -> tuple[list[str], list[str]]:
    """(improved, not improved) sentences for fine-tuned vs base in the main variant, per regime."""
    v = tables.main_variant
    who = f"the {model_label('finetuned', stand_in)} model ({variant_label(v)})"
    improved: list[str] = []
    not_improved: list[str] = []
    for regime in tables.regimes:
        mae_c = tables.comparison("finetune", regime, ("base", v), ("finetuned", v))
        if mae_c is None:
            continue
        rule = tables.significance
        target = improved if change_of(mae_c.result, rule) == "better" else not_improved
        target.append(mae_sentence(mae_c, who, scale, rule))
        wql_c = tables.comparison("finetune", regime, ("base", v), ("finetuned", v), metric="wql")
        sentence = wql_sentence(wql_c, who, rule) if wql_c else None
        if sentence and wql_c is not None:
            (improved if change_of(wql_c.result, rule, in_w=False) == "better" else not_improved).append(sentence)
    return improved, not_improved


def _reduction_ci(rel: Estimate) -> str:
    """The 95 % CI of a relative change B/A − 1, stated as a reduction (1 − B/A), unsigned."""
    return f"95 % CI {fmt_pct(-rel.high, signed=False)} to {fmt_pct(-rel.low, signed=False)}"


def mae_clause(c: Comparison, rule: Significance = DEFAULT_SIGNIFICANCE) -> str:
    """One clause on an MAE comparison ("cut MAE by 26 % in cycling windows (…)"), its verb chosen as in
    `mae_sentence`; covariate sentences join one clause per regime."""
    r = c.result
    where = "over all windows" if c.regime == ALL_REGIMES else f"in {c.regime} windows"
    change = change_of(r, rule)
    if change == "negligible":
        return f"changed MAE negligibly {where} ({fmt_pct(r.rel.value)})"
    if change == "better":
        return f"cut MAE by {fmt_pct(-r.rel.value, signed=False)} {where} ({_reduction_ci(r.rel)})"
    if change == "worse":
        return f"raised MAE by {fmt_pct(r.rel.value, signed=False)} {where} ({_ci_pct(r.rel)})"
    if change == "noise":
        return f"changed MAE within noise {where} ({fmt_pct(r.rel.value)}, {_ci_pct(r.rel)})"
    return f"could not be judged {where} ({c.n_windows} windows)"


def _effect_sentence(
    tables: Tables, kind: ComparisonKind, a: tuple[str, str], b: tuple[str, str], subject: str
) -> str | None:
    """ "{subject} {clause}; {clause}." with one clause per regime where B was compared with A; None if none."""
    clauses = [
        mae_clause(c, tables.significance) for regime in tables.regimes if (c := tables.comparison(kind, regime, a, b))
    ]
    return f"{subject} {'; '.join(clauses)}." if clauses else None


def covariate_findings(tables: Tables, stand_in: bool) -> list[str]:
    """Per model and covariate variant, one sentence listing its effect in each regime."""
    sentences = []
    for model in tables.models:
        with_model = f"With the {model_label(model, stand_in)} model,"
        for variant in COVARIATE_VARIANTS:
            subject = f"{with_model} {variant_label(variant).lstrip('+ ')} (against target only)"
            if sentence := _effect_sentence(tables, "covariates", (model, TARGET_ONLY), (model, variant), subject):
                sentences.append(sentence)
        subject = (
            f"{with_model} the GX's plan and the PV forecast as issued before each cut-off "
            "(against the same model with all other covariates)"
        )
        if sentence := _effect_sentence(tables, "drivers", (model, ALL_COVARIATES), (model, PLAN_FORECAST), subject):
            sentences.append(sentence)
    return sentences


def covariate_claim(tables: Tables, stand_in: bool, claimed: float = EARLIER_COVARIATE_FINDING) -> list[str]:
    """Confirm or refute the earlier finding (covariates cut cycling MAE by `claimed`), per model."""
    claim = fmt_pct(claimed, signed=False)
    head = f"The team's earlier finding of a {claim} MAE reduction from covariates on cycling data"
    sentences = []
    for model in tables.models:
        c = next(
            (
                found
                for variant in (ALL_COVARIATES, PAST_COVARIATES)  # the earlier finding: measured covariates
                if (found := tables.comparison("covariates", "cycling", (model, TARGET_ONLY), (model, variant)))
            ),
            None,
        )
        if c is None:
            continue
        verdict = claim_verdict(c.result.rel, claimed)
        measured = fmt_pct(-c.result.rel.value, signed=False)
        ci = _reduction_ci(c.result.rel)
        detail = {
            "confirmed": f"the measured reduction, {measured} ({ci}), is consistent with it",
            "exceeded": f"covariates help even more: the measured reduction is {measured} ({ci})",
            "not confirmed": f"the measured reduction is {measured} ({ci}), below {claim}",
            "inconclusive": f"the measured reduction, {measured} ({ci}), is compatible with both no effect and {claim}",
            "cannot be checked": f"too few cycling windows ({c.n_windows}) for a confidence interval",
        }[verdict]
        with_what = f"{model_label(model, stand_in)} model, {variant_label(c.variant_b).lstrip('+ ')}"
        sentences.append(f"{head}: {verdict.upper()} with the {with_what} ({c.n_windows} windows): {detail}.")
    if not sentences:
        sentences.append(
            f"{head} cannot be checked: no cycling windows were forecast both with target only and with covariates."
        )
    return sentences


def baseline_findings(tables: Tables, stand_in: bool) -> list[str]:
    """Skill against persistence, and 80 % interval calibration, of the learned models."""
    sentences = []
    v = tables.main_variant
    for model in reversed([m for m in tables.models if m != PERSISTENCE]):
        for regime in tables.regimes:
            row = tables.row(regime, model, v) or tables.row(regime, model, NO_VARIANT)
            if row is None:
                continue
            skill, cover = row.skill, row.coverage80
            if skill.has_ci:
                verdict = (
                    "beats" if skill.low > 0 else "is worse than" if skill.high < 0 else "is not distinguishable from"
                )
                sentences.append(
                    f"{_where(regime)} the {model_label(model, stand_in)} model {verdict} persistence "
                    f"(skill {fmt_ratio(skill.value)}, 95 % CI {fmt_ratio(skill.low)} to {fmt_ratio(skill.high)})."
                )
            if cover.has_ci and not cover.low <= NOMINAL_COVERAGE <= cover.high:
                width = "too narrow" if cover.high < NOMINAL_COVERAGE else "too wide"
                sentences.append(
                    f"{_where(regime)} its 80 % interval is {width}: it covered {fmt_pct(cover.value, signed=False)} "
                    f"of actuals (95 % CI {fmt_pct(cover.low, signed=False)} to {fmt_pct(cover.high, signed=False)})."
                )
    return sentences


def caveats(run: RunData, tables: Tables) -> list[str]:
    """What limits the reading: stand-in model, few windows, fallbacks, missing actuals."""
    notes = []
    if run.stand_in:
        notes.append(
            f"The base model is a STAND-IN, not Chronos-2 ({run.manifest.get('base_model', 'unknown')}), used because "
            "the real weights were unreachable: every number for 'base' and 'fine-tuned' describes that stand-in, "
            "not Chronos-2."
        )
    notes += not_available(run)
    for regime in tables.regimes:
        rows = [r for r in tables.rows if r.regime == regime and r.lead_bucket == "all"]
        n = max((r.n_windows for r in rows), default=0)
        if 0 < n < FEW_WINDOWS and regime != ALL_REGIMES:
            notes.append(f"Only {n} {regime} windows: their confidence intervals are wide.")
    frame = run.forecasts
    for model, share in frame.groupby("model")["fallback"].mean().items():
        if share > 0:
            who = model_label(str(model), run.stand_in)
            notes.append(
                f"{fmt_pct(float(share), signed=False)} of {who} forecast points fell back to a simpler model."
            )
    if interval_columns(run) == (None, None):
        notes.append("The forecasts have no q0.1 and q0.9 columns, so 80 % interval coverage is not available.")
    missing = float(pd.isna(frame["actual"]).mean())
    if missing > 0:
        notes.append(f"{fmt_pct(missing, signed=False)} of forecast points have no actual (gaps) and are not scored.")
    return notes


def not_available(run: RunData) -> list[str]:
    """One sentence per model the run could not forecast (all or some windows), with the reasons."""
    notes = []
    for entry in run.manifest.get("models") or []:
        reasons = entry.get("not_available") or {}
        if not reasons:
            continue
        why = "; ".join(f"{reason} ({count} windows)" for reason, count in reasons.items())
        who = model_label(str(entry.get("name")), run.stand_in)
        if int(entry.get("windows", 0)) == 0:
            notes.append(f"{who} was not available in this run, so it has no rows: {why}.")
        else:
            notes.append(f"{who} was not available in some windows: {why}.")
    return notes


def build_narrative(run: RunData, tables: Tables) -> Narrative:
    """All generated findings for a run."""
    improved, not_improved = finetune_findings(tables, run.stand_in, run.scale)
    return Narrative(
        finetune_improved=improved,
        finetune_not=not_improved,
        covariates=covariate_findings(tables, run.stand_in),
        covariate_claim=covariate_claim(tables, run.stand_in),
        baselines=baseline_findings(tables, run.stand_in),
        caveats=caveats(run, tables),
    )
