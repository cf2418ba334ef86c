"""The generated narrative says what the numbers say (synthetic runs with controlled differences)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.report.labels import STAND_IN_TAG, PowerScale, fmt_power, power_scale
from forecaster.report.narrative import (
    Narrative,
    build_narrative,
    change_of,
    claim_verdict,
    mae_clause,
    mae_sentence,
    wql_sentence,
)
from forecaster.report.plots import representative_cutoff
from forecaster.report.runfolder import load_run
from forecaster.report.stats import Estimate, PairedEstimate
from forecaster.report.synthetic import SyntheticSpec, finetune_better_on_cycling, write_synthetic_run
from forecaster.report.tables import ALL_LEADS, Comparison, Significance, Tables, build_tables

SMALL = {"quiet": 14, "cycling": 14, "transition": 3}
NAN = math.nan


def small(spec: SyntheticSpec) -> SyntheticSpec:
    """The same spec with fewer, shorter windows so the tests stay fast."""
    return dataclasses.replace(spec, windows=SMALL, horizon_steps=30)


def report_of(tmp: Path, spec: SyntheticSpec) -> tuple[Tables, Narrative]:
    run = load_run(write_synthetic_run(tmp, spec))
    tables = build_tables(run, seed=0, resamples=400)
    return tables, build_narrative(run, tables)


@pytest.fixture(scope="module")
def better_on_cycling(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tables, Narrative]:
    """Fine-tuned 40 % better on cycling, equal on quiet; all covariates cut cycling error ~26 %."""
    return report_of(tmp_path_factory.mktemp("better"), small(finetune_better_on_cycling(seed=11)))


@pytest.fixture(scope="module")
def worse_no_covariate_gain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tables, Narrative]:
    """Fine-tuned 50 % WORSE on cycling; covariates do nothing; base is a stand-in."""
    gains = {("cycling", "finetuned", v): 1.5 for v in ("target_only", "past_covariates", "all_covariates")}
    spec = SyntheticSpec(seed=5, gains=gains, stand_in=True)
    return report_of(tmp_path_factory.mktemp("worse"), small(spec))


def paired(a: float, b: float, low: float, high: float) -> PairedEstimate:
    rel = b / a - 1
    return PairedEstimate(a, b, Estimate(b - a, low, high), Estimate(rel, rel - 0.01, rel + 0.01))


@pytest.mark.parametrize(
    ("a", "b", "low", "high", "expected"),
    [
        (300.0, 200.0, -120.0, -80.0, "better"),
        (200.0, 300.0, 80.0, 120.0, "worse"),
        (300.0, 280.0, -40.0, 10.0, "noise"),
        (300.0, 290.0, NAN, NAN, "unknown"),
        (247.06, 247.01, -0.08, -0.02, "negligible"),  # "cut MAE from 247 W to 247 W (-0.02 %)"
        (5000.0, 4940.0, -70.0, -50.0, "negligible"),  # beyond noise but -1.2 %: under 2 %
        (40.0, 37.0, -3.5, -2.5, "negligible"),  # -7.5 % but only 3 W: under the 5 W floor
    ],
)
def test_when_a_paired_difference_is_given_then_the_verdict_is_better_worse_negligible_or_noise(
    a: float, b: float, low: float, high: float, expected: str
) -> None:
    assert change_of(paired(a, b, low, high)) == expected


@pytest.mark.parametrize(
    ("regime", "a_b_low_high", "clause", "sentence"),
    [
        (
            "cycling",
            (300.0, 200.0, -120.0, -80.0),
            "cut MAE by 33 % in cycling windows (95 % CI 32 % to 34 %)",
            "In cycling windows the gbm model cut MAE from 300 W to 200 W (−33 %, 95 % CI −34 % to −32 %; 30 windows).",
        ),
        (
            "cycling",
            (200.0, 300.0, 80.0, 120.0),
            "raised MAE by 50 % in cycling windows (95 % CI +49 % to +51 %)",
            "In cycling windows the gbm model raised MAE from 200 W to 300 W "
            "(+50 %, 95 % CI +49 % to +51 %; 30 windows).",
        ),
        (
            "all",
            (300.0, 280.0, -40.0, 10.0),
            "changed MAE within noise over all windows (−7 %, 95 % CI −8 % to −6 %)",
            "Over all windows the MAE difference (−20.0 W, 95 % CI −40.0 to 10.0 W; 30 windows) is within noise: "
            "300 W before, 280 W after.",
        ),
        (
            "quiet",
            (300.0, 290.0, NAN, NAN),
            "could not be judged in quiet windows (30 windows)",
            "In quiet windows there are too few windows (30) to tell: MAE 300 W before, 290 W after.",
        ),
        (
            "cycling",
            (5000.0, 4940.0, -70.0, -50.0),
            "changed MAE negligibly in cycling windows (−1 %)",
            "In cycling windows the gbm model changed MAE by a negligible amount: 5,000 W before, 4,940 W after "
            "(−1 %; under 2 % or under 5.00 W counts as negligible; 30 windows).",
        ),
    ],
)
def test_when_an_mae_comparison_is_given_then_the_clause_and_the_sentence_read_exactly(
    regime: str, a_b_low_high: tuple[float, float, float, float], clause: str, sentence: str
) -> None:
    c = Comparison(
        "covariates", regime, "all", "mae", "gbm", "target_only", "gbm", "all_covariates", 30, paired(*a_b_low_high)
    )
    assert mae_clause(c) == clause
    assert mae_sentence(c, "the gbm model", PowerScale()) == sentence


def test_when_wql_changes_by_a_hair_beyond_noise_then_it_is_negligible_not_worsened() -> None:
    wql = paired(1.118, 1.119, 0.0004, 0.0016)  # "worsened WQL from 1.118 to 1.119 (beyond noise)"
    assert change_of(wql, in_w=False) == "negligible"
    comparison = Comparison("finetune", "cycling", "all", "wql", "base", "v", "finetuned", "v", 30, wql)
    assert wql_sentence(comparison, "the fine-tuned model") is None
    mae = Comparison(
        "finetune", "cycling", "all", "mae", "base", "v", "finetuned", "v", 30, paired(247.06, 247.01, -0.08, -0.02)
    )
    text = mae_sentence(mae, "the fine-tuned model", PowerScale())
    assert "negligible" in text and "cut MAE" not in text


def test_when_power_is_large_then_the_unit_scales_to_kw_or_mw() -> None:
    assert power_scale(np.array([0.0, 300.0, -800.0])).unit == "W"
    assert power_scale(np.array([0.0, 2500.0, -1500.0])).unit == "kW"
    mw = power_scale(np.array([0.0, 2.0e6, -1.2e6]))
    assert mw.unit == "MW" and fmt_power(1_250_000.0, mw) == "1.25 MW"


def test_when_the_rule_is_configured_then_the_threshold_moves() -> None:
    result = paired(5000.0, 4940.0, -70.0, -50.0)
    assert change_of(result, Significance(rel=0.01, floor_w=5.0)) == "better"


@pytest.mark.parametrize(
    ("rel_low", "rel_high", "expected"),
    [
        (-0.30, -0.22, "confirmed"),  # reduction 22..30 % contains 26 % and excludes 0
        (-0.45, -0.35, "exceeded"),  # reduction 35..45 %: larger than 26 %
        (-0.15, -0.05, "not confirmed"),  # helps, but less than 26 %
        (0.05, 0.20, "not confirmed"),  # covariates made it worse
        (-0.35, 0.05, "inconclusive"),  # compatible with both no effect and 26 %
        (NAN, NAN, "cannot be checked"),
    ],
)
def test_when_measured_reduction_ci_is_given_then_claim_verdict_follows(
    rel_low: float, rel_high: float, expected: str
) -> None:
    assert claim_verdict(Estimate((rel_low + rel_high) / 2, rel_low, rel_high), 0.26) == expected


def test_when_finetuned_better_on_cycling_then_improved_mentions_cycling_with_the_table_numbers(
    better_on_cycling: tuple[Tables, Narrative],
) -> None:
    tables, narrative = better_on_cycling
    v = tables.main_variant
    base, tuned = tables.row("cycling", "base", v), tables.row("cycling", "finetuned", v)
    assert base is not None and tuned is not None
    cycling = [s for s in narrative.finetune_improved if s.startswith("In cycling windows") and "cut MAE" in s]
    assert len(cycling) == 1
    kw = PowerScale("kW", 1e3)  # the synthetic battery cycles at 1.5 kW: the report speaks kW
    assert fmt_power(base.mae.value, kw) in cycling[0] and fmt_power(tuned.mae.value, kw) in cycling[0]
    assert not any("cycling" in s for s in narrative.finetune_not)


def test_when_finetuned_equal_on_quiet_then_quiet_is_within_noise_and_not_improved(
    better_on_cycling: tuple[Tables, Narrative],
) -> None:
    tables, narrative = better_on_cycling
    comparison = tables.comparison(
        "finetune", "quiet", ("base", tables.main_variant), ("finetuned", tables.main_variant)
    )
    assert comparison is not None
    assert comparison.result.diff.low <= 0 <= comparison.result.diff.high
    quiet = [s for s in narrative.finetune_not if s.startswith("In quiet windows")]
    assert quiet and "within noise" in quiet[0]
    assert not any(s.startswith("In quiet windows") for s in narrative.finetune_improved)


def test_when_covariates_cut_cycling_error_by_26_percent_then_the_earlier_finding_is_confirmed(
    better_on_cycling: tuple[Tables, Narrative],
) -> None:
    _tables, narrative = better_on_cycling
    assert narrative.covariate_claim
    assert all("CONFIRMED" in s and "NOT CONFIRMED" not in s for s in narrative.covariate_claim)


def test_when_finetuned_worse_on_cycling_then_narrative_says_it_raised_mae(
    worse_no_covariate_gain: tuple[Tables, Narrative],
) -> None:
    _tables, narrative = worse_no_covariate_gain
    cycling = [s for s in narrative.finetune_not if s.startswith("In cycling windows") and "MAE" in s]
    assert cycling and "raised MAE" in cycling[0]
    assert not any(s.startswith("In cycling windows") for s in narrative.finetune_improved)


def test_when_covariates_do_nothing_then_the_earlier_finding_is_not_confirmed(
    worse_no_covariate_gain: tuple[Tables, Narrative],
) -> None:
    _tables, narrative = worse_no_covariate_gain
    assert narrative.covariate_claim
    assert all("NOT CONFIRMED" in s for s in narrative.covariate_claim)
    assert any("changed MAE within noise in cycling windows" in s for s in narrative.covariates)


def test_when_base_is_a_stand_in_then_every_model_sentence_carries_the_label(
    worse_no_covariate_gain: tuple[Tables, Narrative],
) -> None:
    _tables, narrative = worse_no_covariate_gain
    model_sentences = [
        s
        for s in narrative.finetune_improved + narrative.finetune_not + narrative.covariates + narrative.covariate_claim
        if "model" in s
    ]
    assert model_sentences
    assert all(STAND_IN_TAG in s for s in model_sentences)
    assert any("STAND-IN" in s for s in narrative.caveats)


def test_when_real_model_then_no_stand_in_label(better_on_cycling: tuple[Tables, Narrative]) -> None:
    _tables, narrative = better_on_cycling
    everything = " ".join(narrative.finetune_improved + narrative.finetune_not + narrative.caveats)
    assert STAND_IN_TAG not in everything


def test_when_regime_has_few_windows_then_a_caveat_says_so(better_on_cycling: tuple[Tables, Narrative]) -> None:
    _tables, narrative = better_on_cycling
    assert any(s.startswith(f"Only {SMALL['transition']} transition windows") for s in narrative.caveats)


def test_when_picking_a_representative_window_then_it_has_the_median_error(
    better_on_cycling: tuple[Tables, Narrative],
) -> None:
    tables, _narrative = better_on_cycling
    cell = tables.cells[("cycling", "finetuned", tables.main_variant, ALL_LEADS)]
    errors = cell.sums[:, 1] / cell.sums[:, 0]
    chosen = representative_cutoff(tables, "cycling")
    assert chosen is not None
    index = int(np.flatnonzero(cell.cutoffs == pd.Timestamp(chosen).value)[0])
    below = int((errors < errors[index]).sum())
    assert below == (len(errors) - 1) // 2


def test_when_the_plan_variant_cuts_cycling_error_then_the_drivers_sentence_and_table_say_so(tmp_path: Path) -> None:
    pairs = tuple((m, v) for m in ("gbm",) for v in ("target_only", "all_covariates", "plan_forecast"))
    gains = {(r, "gbm", "plan_forecast"): 0.5 for r in ("cycling", "transition")}
    spec = SyntheticSpec(seed=3, gains=gains, pairs=(*pairs, ("persistence", "none")))
    tables, narrative = report_of(tmp_path, small(spec))
    c = tables.comparison("drivers", "cycling", ("gbm", "all_covariates"), ("gbm", "plan_forecast"))
    assert c is not None and c.result.rel.high < 0  # about -50 %, beyond noise
    said = [s for s in narrative.covariates if "plan and the PV forecast" in s]
    assert len(said) == 1 and "cut MAE" in said[0] and "cycling" in said[0]
    quiet = tables.comparison("drivers", "quiet", ("gbm", "all_covariates"), ("gbm", "plan_forecast"))
    assert quiet is not None and quiet.result.rel.low < 0 < quiet.result.rel.high  # no gain there: within noise
