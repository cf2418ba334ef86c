"""`bess-forecaster backtest`: rolling-origin backtest of base vs fine-tuned Chronos-2 (+ baselines) on
recorded history, with the covariate ablation; writes runs/<run id>/ and tagged forecasts to InfluxDB."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bess_common.errors import FatalError, RejectedError, RetryableError
from bess_common.influx import InfluxClient
from forecaster.backtest.inputs import read_held_series, read_plan_drivers
from forecaster.backtest.plan import Plan, PlanError, history_problem, make_plan
from forecaster.backtest.run import Request, default_run_id, run_backtest
from forecaster.commands.common import add_config, load, parse_utc_ns
from forecaster.config import ForecastTask, Settings
from forecaster.models import BaseModelUnavailable, ModelSet, load_pipeline
from forecaster.standin import STAND_IN_VERSION, build_stand_in, stand_in_notice
from forecaster.store import ForecastStore

HELP = "Backtest base vs fine-tuned Chronos-2 and baselines over recorded history, by regime, lead and covariates"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments."""
    add_config(parser)
    parser.add_argument("--task", required=True, help="task name from [[forecaster.tasks]]")
    parser.add_argument("--start", required=True, help="first data used (ISO-8601, UTC if no offset)")
    parser.add_argument("--end", required=True, help="end of the data (exclusive)")
    parser.add_argument("--split", required=True, help="fine-tune on data before it; cut-offs from it on")
    parser.add_argument("--step", type=int, default=None, help="steps between cut-offs (default: the task's cadence)")
    parser.add_argument("--max-cutoffs", type=int, default=None, help="at most M cut-offs, evenly spaced (CPU budget)")
    parser.add_argument("--seed", type=int, default=0, help="seed of torch / numpy (same seed, same results)")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="folder of run folders (default runs/)")
    parser.add_argument("--run-id", default=None, help="run id (default: bt-<site>-<task>-<split>-s<seed>)")
    parser.add_argument("--finetune-steps", type=int, default=None, help="override forecaster.finetune.num_steps")
    parser.add_argument("--no-finetune", action="store_true", help="skip the fine-tune (base and baselines only)")
    parser.add_argument("--dataset", default="", help="name of the dataset, shown in the report")
    parser.add_argument(
        "--hold-last",
        type=int,
        default=0,
        metavar="STEPS",
        help="carry each value forward over at most STEPS empty buckets (state-change recordings such as "
        "Home Assistant, where a value holds until the next row); never through a recorded outage "
        "(unknown/unavailable); default 0 = off",
    )
    parser.add_argument(
        "--allow-stand-in",
        action="store_true",
        help="when the base model cannot be loaded, use the mini Chronos-2 STAND-IN (pretrained on synthetic data "
        "only; labelled as such everywhere)",
    )


def _task(settings: Settings, name: str) -> ForecastTask | None:
    return next((t for t in settings.forecaster.tasks if t.name == name), None)


def _plan(settings: Settings, args: argparse.Namespace) -> Plan | list[str]:
    task = _task(settings, args.task)
    if task is None:
        names = ", ".join(t.name for t in settings.forecaster.tasks)
        return [f"unknown task {args.task!r}; the config defines: {names}"]
    times: dict[str, int] = {}
    problems = []
    for name in ("start", "split", "end"):
        try:
            times[name] = parse_utc_ns(getattr(args, name))
        except ValueError:
            problems.append(f"--{name} {getattr(args, name)!r} is not an ISO-8601 time")
    if args.finetune_steps is not None and args.finetune_steps < 1:
        problems.append("--finetune-steps must be at least 1")
    if args.hold_last < 0:
        problems.append("--hold-last must be 0 or more")
    if problems:
        return problems
    try:
        return make_plan(
            task, times["start"], times["split"], times["end"], every_steps=args.step, max_cutoffs=args.max_cutoffs
        )
    except PlanError as exc:
        return exc.problems


def load_models(settings: Settings, out: Path, allow_stand_in: bool) -> tuple[ModelSet | None, bool]:
    """(resident models, is stand-in). Without --allow-stand-in an unloadable base model is an error."""
    fs = settings.forecaster
    try:
        return ModelSet(load_pipeline(fs.base_model, fs.num_threads), fs.base_model), False
    except BaseModelUnavailable as exc:
        if not allow_stand_in:
            print(
                f"{exc} (or rerun with --allow-stand-in to test the pipeline with the mini stand-in model)",
                file=sys.stderr,
            )
            return None, False
        directory = build_stand_in(out / ".stand-in")
        print(stand_in_notice(str(exc), directory), file=sys.stderr, flush=True)
        return ModelSet(load_pipeline(str(directory), fs.num_threads), STAND_IN_VERSION), True


def main(args: argparse.Namespace) -> int:
    """0 done; 1 runtime failure (InfluxDB, base model); 2 bad config, arguments or too little data."""
    settings = load(args)
    if settings is None:
        return 2
    plan = _plan(settings, args)
    if isinstance(plan, list):
        for line in plan:
            print(f"backtest: {line}", file=sys.stderr)
        return 2
    return _run(settings, plan, args)


def _run(settings: Settings, plan: Plan, args: argparse.Namespace) -> int:
    started = time.monotonic()
    store = ForecastStore(InfluxClient(settings.influx), settings.site)
    try:
        series = read_held_series(store, plan, args.hold_last)
        drivers = read_plan_drivers(store, plan, settings.forecaster)
    except (RetryableError, RejectedError, FatalError) as exc:
        print(f"backtest: cannot read the series from InfluxDB: {exc}", file=sys.stderr)
        return 1
    problem = history_problem(plan, series[plan.task.target], finetune=not args.no_finetune)
    if problem:
        print(f"backtest: {problem}", file=sys.stderr)
        return 2
    models, stand_in = load_models(settings, args.out, args.allow_stand_in)
    if models is None:
        return 1
    run_id = args.run_id or default_run_id(settings.site, plan.task.name, plan.split_ns, args.seed)
    request = Request(
        run_id=run_id,
        out_dir=args.out,
        seed=args.seed,
        finetune=not args.no_finetune,
        finetune_steps=args.finetune_steps,
        dataset=args.dataset or settings.site,
        base_model=STAND_IN_VERSION if stand_in else settings.forecaster.base_model,
        stand_in=stand_in,
        hold_last_steps=args.hold_last,
        started_s=started,
    )
    print(
        f"backtest {run_id}: task {plan.task.name}, {len(plan.cutoffs)} cut-offs, "
        f"fine-tune {'off' if args.no_finetune else 'on'}, base {request.base_model}",
        file=sys.stderr,
        flush=True,
    )
    try:
        outcome = run_backtest(
            plan, series, models, settings=settings.forecaster, store=store, request=request, drivers=drivers
        )
    except (RetryableError, RejectedError, FatalError, RuntimeError) as exc:
        print(f"backtest: failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"backtest {run_id}: {outcome.windows} windows scored, {outcome.skipped} skipped, "
        f"{outcome.points_written} forecast points written (run={run_id}) in {outcome.manifest['wall_s']} s "
        "(wall time, as in manifest.json)"
    )
    print(f"run: {outcome.run_dir}")
    return 0
