"""Pure planning of a backtest: cut-offs, usage errors, the fine-tune's pre-split data, the ablation variants."""

from __future__ import annotations

import numpy as np
import pytest

from forecaster import finetune as ft
from forecaster.backtest.ablation import VARIANTS, variant_task, variant_windows
from forecaster.backtest.plan import (
    PlanError,
    finetune_split,
    history_problem,
    make_plan,
    pick_evenly,
    pre_split_series,
)
from forecaster.config import ForecastTask

NS = 1_000_000_000
HOUR_NS = 3600 * NS
T0 = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
TASK = ForecastTask(name="t5m", resolution="5m", context_steps=288, horizon_steps=24, cadence="1h")


def series_for(plan_n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0, 100, plan_n) for k in [TASK.target, *TASK.past_covariates]}


def test_when_planned_then_cutoffs_step_from_the_split_and_every_horizon_ends_by_the_end() -> None:
    plan = make_plan(TASK, T0, T0 + 48 * HOUR_NS, T0 + 72 * HOUR_NS, every_steps=12)
    assert plan.cutoffs[0] == T0 + 48 * HOUR_NS
    assert np.all(np.diff(plan.cutoffs) == HOUR_NS)
    assert plan.cutoffs[-1] + TASK.horizon_steps * 300 * NS <= T0 + 72 * HOUR_NS
    assert len(plan.cutoffs) == 23  # 48 h .. 70 h, each with a 2 h horizon
    assert plan.read_start_ns == T0 and plan.n_steps == 72 * 12


def test_when_cutoffs_are_capped_then_they_are_evenly_spaced_with_first_and_last_kept() -> None:
    plan = make_plan(TASK, T0, T0 + 48 * HOUR_NS, T0 + 72 * HOUR_NS, every_steps=12, max_cutoffs=5)
    full = make_plan(TASK, T0, T0 + 48 * HOUR_NS, T0 + 72 * HOUR_NS, every_steps=12)
    assert len(plan.cutoffs) == 5
    assert plan.cutoffs[0] == full.cutoffs[0] and plan.cutoffs[-1] == full.cutoffs[-1]
    assert pick_evenly(list(range(10)), 3) == [0, 4, 9]
    assert pick_evenly([1, 2], 5) == [1, 2]


def test_when_the_start_is_late_then_the_grid_still_reaches_back_one_context() -> None:
    plan = make_plan(TASK, T0 + 40 * HOUR_NS, T0 + 48 * HOUR_NS, T0 + 72 * HOUR_NS)
    assert plan.read_start_ns == T0 + 24 * HOUR_NS  # split − 288 × 5 min
    assert plan.every_steps == 12  # the task's cadence by default


@pytest.mark.parametrize(
    ("start_h", "split_h", "end_h", "expected"),
    [
        (0, 80, 72, "outside"),
        (0, 0, 72, "outside"),
        (72, 80, 0, "must be before"),
        (0, 71, 72, "no cut-off fits"),
    ],
)
def test_when_the_range_is_unusable_then_plan_error_says_why(
    start_h: int, split_h: int, end_h: int, expected: str
) -> None:
    with pytest.raises(PlanError) as info:
        make_plan(TASK, T0 + start_h * HOUR_NS, T0 + split_h * HOUR_NS, T0 + end_h * HOUR_NS)
    assert any(expected in p for p in info.value.problems)


def test_when_data_after_the_split_changes_then_the_finetune_inputs_do_not() -> None:
    plan = make_plan(TASK, T0, T0 + 48 * HOUR_NS, T0 + 72 * HOUR_NS)
    series = series_for(plan.n_steps)
    changed = {k: v.copy() for k, v in series.items()}
    split_index = plan.index(plan.split_ns)
    for values in changed.values():
        values[split_index:] = 1e6
    split = finetune_split(plan, validation_days=0.5)
    assert split.gate_start_ns == split.end_ns == plan.split_ns

    def inputs(data: dict[str, np.ndarray]) -> list[np.ndarray]:
        pre, start = pre_split_series(data, plan)
        assert all(len(v) == split_index for v in pre.values())  # ends at the split
        train, validation = ft.training_inputs(pre, start, TASK, split, context_steps=128)
        assert validation  # checkpoint selection has held-out series before the split
        return [x["target"] for x in train + validation]

    for a, b in zip(inputs(series), inputs(changed), strict=True):
        np.testing.assert_array_equal(a, b)


def test_when_history_is_short_then_the_problem_names_what_is_needed() -> None:
    plan = make_plan(TASK, T0 + 40 * HOUR_NS, T0 + 48 * HOUR_NS, T0 + 72 * HOUR_NS)
    target = np.full(plan.n_steps, np.nan)
    target[plan.index(plan.split_ns) - 100 :] = 1.0
    problem = history_problem(plan, target, finetune=False)
    assert problem is not None and "needs 144 steps" in problem and "has 100 steps" in problem
    target[:] = 1.0
    assert history_problem(plan, target, finetune=True) is None
    short = make_plan(TASK, T0 + 47 * HOUR_NS, T0 + 48 * HOUR_NS, T0 + 72 * HOUR_NS)
    problem = history_problem(short, np.ones(short.n_steps), finetune=True)
    assert problem is not None and "fine-tune" in problem and "needs 72 steps" in problem
    assert history_problem(short, np.ones(short.n_steps), finetune=False) is None


def test_when_windows_are_built_per_variant_then_only_the_covariates_differ() -> None:
    plan = make_plan(TASK, T0, T0 + 48 * HOUR_NS, T0 + 72 * HOUR_NS)
    windows = variant_windows(series_for(plan.n_steps), plan.read_start_ns, TASK, plan.cutoffs[0])
    assert tuple(windows) == ("target_only", "past_covariates", "all_covariates")  # no driver: no plan variant
    assert windows["target_only"].past == {} and windows["target_only"].future == {}
    assert set(windows["past_covariates"].past) == set(TASK.past_covariates)
    assert windows["past_covariates"].future == {}
    assert set(windows["all_covariates"].past) == {*TASK.past_covariates, *TASK.known_covariates}
    assert set(windows["all_covariates"].future) == set(TASK.known_covariates)
    for window in windows.values():
        np.testing.assert_array_equal(window.target, windows["all_covariates"].target)
    with pytest.raises(ValueError, match="unknown variant"):
        variant_task(TASK, "everything")


def test_when_a_task_lists_drivers_then_only_the_plan_variant_has_them() -> None:
    task = TASK.model_copy(update={"known_covariates": ["tod_sin", "plan_charge_active", "pv_forecast_w"]})
    plan = make_plan(task, T0, T0 + 48 * HOUR_NS, T0 + 72 * HOUR_NS)
    windows = variant_windows(series_for(plan.n_steps), plan.read_start_ns, task, plan.cutoffs[0])
    assert tuple(windows) == VARIANTS
    assert set(windows["all_covariates"].future) == {"tod_sin"}
    assert set(windows["plan_forecast"].future) == {"tod_sin", "plan_charge_active", "pv_forecast_w"}
    assert set(windows["plan_forecast"].past) == {*task.past_covariates, *task.known_covariates}
    no_plan = windows["plan_forecast"]  # no drivers at all: neutral values, not a crash
    assert (no_plan.future["plan_charge_active"] == 0).all() and np.isnan(no_plan.future["pv_forecast_w"]).all()


def test_when_values_are_held_then_only_holes_up_to_the_limit_fill_with_the_last_value() -> None:
    from forecaster.backtest.hold import hold_last

    nan = np.nan
    values = np.array([nan, 1.0, nan, nan, 2.0, nan, nan, nan, 3.0])
    np.testing.assert_array_equal(hold_last(values, 2), [nan, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, nan, 3.0])
    np.testing.assert_array_equal(hold_last(values, 0), values)
    assert np.isnan(hold_last(values, 2)[0])  # nothing before the first value is invented
