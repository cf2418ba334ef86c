"""Pure planning of a backtest: the grid to read, the cut-offs, the fine-tune's pre-split data and the
checks that produce clear usage errors (split outside the range, too little data before the split)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from bess_common.errors import FatalError
from forecaster.config import ForecastTask
from forecaster.finetune import Split
from forecaster.windows import DAY_S, NS, iso


class PlanError(FatalError):
    """The request cannot be planned; `problems` holds one plain line per problem (exit 2)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Plan:
    """Where a backtest reads, trains and forecasts (all grid-aligned, int ns)."""

    task: ForecastTask
    start_ns: int
    split_ns: int
    end_ns: int
    read_start_ns: int  # earliest grid bucket read: min(start, split - context)
    n_steps: int  # grid buckets from read_start to end
    every_steps: int
    cutoffs: tuple[int, ...]

    @property
    def step_ns(self) -> int:
        """Grid step in ns."""
        return self.task.resolution_s * NS

    def index(self, ts_ns: int) -> int:
        """Grid index of a timestamp (relative to read_start)."""
        return int((ts_ns - self.read_start_ns) // self.step_ns)


def span_text(steps: int, step_s: int) -> str:
    """'1440 steps' -> '1440 steps (1.0 d)' / '(6.0 h)'."""
    seconds = steps * step_s
    return f"{steps} steps ({seconds / DAY_S:.1f} d)" if seconds >= DAY_S else f"{steps} steps ({seconds / 3600:.1f} h)"


def pick_evenly(values: list[int], limit: int | None) -> list[int]:
    """At most `limit` values, evenly spaced over the list (first and last kept), deterministic."""
    if limit is None or len(values) <= limit:
        return list(values)
    if limit == 1:
        return [values[-1]]
    picks = np.linspace(0, len(values) - 1, limit).round().astype(int)
    return [values[i] for i in sorted(set(picks.tolist()))]


def make_plan(
    task: ForecastTask,
    start_ns: int,
    split_ns: int,
    end_ns: int,
    *,
    every_steps: int | None = None,
    max_cutoffs: int | None = None,
) -> Plan:
    """Cut-offs every N steps from the split while the whole horizon ends by `end`; PlanError otherwise."""
    step_ns = task.resolution_s * NS
    start = start_ns - start_ns % step_ns
    split = -(-split_ns // step_ns) * step_ns  # aligned up: nothing at or after the split is before it
    end = end_ns - end_ns % step_ns
    every = every_steps or max(1, task.cadence_s // task.resolution_s)
    problems = []
    if not start < end:
        problems.append(f"--start {iso(start_ns)} must be before --end {iso(end_ns)}")
    elif not start < split < end:
        problems.append(
            f"--split {iso(split_ns)} is outside ({iso(start)}, {iso(end)}): it must lie between start and end"
        )
    if every < 1 or (max_cutoffs is not None and max_cutoffs < 1):
        problems.append("--step and --max-cutoffs must be at least 1")
    horizon_ns = task.horizon_steps * step_ns
    all_cutoffs = list(range(split, end - horizon_ns + 1, every * step_ns)) if not problems else []
    if not problems and not all_cutoffs:
        problems.append(
            f"no cut-off fits: the horizon ({span_text(task.horizon_steps, task.resolution_s)}) "
            f"must end by --end {iso(end)}; move the split earlier or the end later"
        )
    if problems:
        raise PlanError(problems)
    read_start = min(start, split - task.context_steps * step_ns)
    return Plan(
        task,
        start,
        split,
        end,
        read_start,
        int((end - read_start) // step_ns),
        every,
        tuple(pick_evenly(all_cutoffs, max_cutoffs)),
    )


def validation_steps(plan: Plan, validation_days: float) -> int:
    """Held-out steps just before the split for checkpoint selection: a fifth of the pre-split data,
    at least one horizon, at most `validation_days`."""
    pre = plan.index(plan.split_ns) - plan.index(plan.start_ns)
    most = max(plan.task.horizon_steps, round(validation_days * DAY_S / plan.task.resolution_s))
    return int(min(most, max(plan.task.horizon_steps, pre // 5)))


def needed_before_split(task: ForecastTask) -> tuple[int, int]:
    """Target points needed before the split: (in the first window's context, in [start, split) for a
    fine-tune: training series of 2 horizons plus a validation horizon)."""
    return math.ceil(task.min_context_fraction * task.context_steps), 3 * task.horizon_steps


def history_problem(plan: Plan, target: np.ndarray, finetune: bool) -> str | None:
    """A plain line when the target has too little data before the split, else None."""
    split = plan.index(plan.split_ns)
    context_need, finetune_need = needed_before_split(plan.task)
    checks = [("the first window's context", split - plan.task.context_steps, context_need)]
    if finetune:
        checks.append(("the fine-tune (from --start)", plan.index(plan.start_ns), finetune_need))
    for what, lo, need in checks:
        found = int(np.isfinite(target[max(0, lo) : split]).sum())
        if found < need:
            return (
                f"too little data before the split {iso(plan.split_ns)} for {what}: {plan.task.target} has "
                f"{span_text(found, plan.task.resolution_s)} of {plan.task.resolution} buckets with data, it needs "
                f"{span_text(need, plan.task.resolution_s)}; move --split later or --start earlier"
            )
    return None


def pre_split_series(series: Mapping[str, np.ndarray], plan: Plan) -> tuple[dict[str, np.ndarray], int]:
    """The fine-tune's data: every series cut to [start, split) and its grid start. Nothing at or after
    the split is in it, by construction."""
    lo, hi = plan.index(plan.start_ns), plan.index(plan.split_ns)
    return {k: np.array(v[lo:hi], dtype=float) for k, v in series.items()}, plan.start_ns


def finetune_split(plan: Plan, validation_days: float) -> Split:
    """Train [start, split - validation), validation [.., split); the gate period is empty (ends at the split)."""
    val_start = plan.split_ns - validation_steps(plan, validation_days) * plan.step_ns
    return Split(plan.start_ns, val_start, plan.split_ns, plan.split_ns)
