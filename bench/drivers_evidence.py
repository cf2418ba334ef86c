"""What the GX's plan and the PV forecast do for the learned models, on windows whose horizon holds a charge
the plan schedules.

A backtest (forecaster.backtest.run, the `backtest` command's own code: read once, fine-tune and fit on the
data before the split, every model and covariate variant at every cut-off, run folder) of a task that lists
the driver covariates, on chosen cut-offs: those whose horizon holds a charge scheduled in the plan as known
AT the cut-off (forecaster.drivers, the rule the forecasts use; never the actuals), plus as many others
without one. Scored by the report's tables (forecaster.metrics, window bootstrap): per learned model, MAE
[95 % CI] with every covariate but the drivers (`all_covariates`) and with them (`plan_forecast`), and the
paired change [95 % CI], on the charge windows and on the others. Prints Markdown; the run folder can be
rendered with `bess-forecaster report`.

    python -m bench.drivers_evidence --config CONFIG --task TASK --start ISO --split ISO --end ISO \\
        [--every-steps 5] [--charge-cutoffs 120] [--other-cutoffs 60] [--finetune-steps N | --no-finetune] \\
        [--allow-stand-in] [--out runs] [--run-id ID] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bess_common.influx import InfluxClient
from forecaster import drivers as known
from forecaster.backtest.inputs import read_held_series, read_plan_drivers
from forecaster.backtest.plan import make_plan, pick_evenly
from forecaster.backtest.run import Request, run_backtest
from forecaster.commands.backtest import load_models
from forecaster.commands.common import parse_utc_ns
from forecaster.config import load_settings
from forecaster.report.runfolder import load_run
from forecaster.report.stats import Estimate
from forecaster.report.tables import ALL_REGIMES, Tables, build_tables
from forecaster.run_contract import ALL_COVARIATES, FORECASTS_FILE, MANIFEST_FILE, PLAN_FORECAST
from forecaster.standin import STAND_IN_VERSION
from forecaster.store import ForecastStore

LEARNED = ("gbm", "base", "finetuned")


def charge_cutoffs(drivers: known.Drivers | None, cutoffs: Sequence[int], step_ns: int, horizon_steps: int) -> set[int]:
    """The cut-offs whose horizon holds a charge scheduled in the plan as known at the cut-off."""
    out = set()
    for cutoff in cutoffs:
        ts = cutoff + step_ns * np.arange(horizon_steps, dtype=np.int64)
        active = known.horizon(drivers, [known.PLAN_CHARGE_ACTIVE], cutoff, ts, step_ns)[known.PLAN_CHARGE_ACTIVE]
        if (active > 0).any():
            out.add(cutoff)
    return out


def subset_run(run_dir: Path, cutoffs: set[int], out: Path, what: str) -> Path:
    """A run folder with only the forecasts of `cutoffs` (its manifest says which)."""
    frame = pd.read_csv(run_dir / FORECASTS_FILE)
    stamps = pd.to_datetime(frame["cutoff"], utc=True).map(lambda t: t.value)  # ns, whatever the parsed unit
    out.mkdir(parents=True, exist_ok=True)
    frame[stamps.isin(cutoffs)].to_csv(out / FORECASTS_FILE, index=False)
    manifest = json.loads((run_dir / MANIFEST_FILE).read_text())
    manifest["subset"] = what
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def _ci(e: Estimate, scale: float = 1.0, fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(e.value * scale)} [{fmt.format(e.low * scale)}, {fmt.format(e.high * scale)}]"


def rows_of(tables: Tables, label: str, stand_in: bool) -> list[str]:
    """Markdown rows: per learned model, MAE without / with the drivers and the paired change, all regimes."""
    lines = []
    for model in LEARNED:
        a = tables.row(ALL_REGIMES, model, ALL_COVARIATES)
        b = tables.row(ALL_REGIMES, model, PLAN_FORECAST)
        c = tables.comparison("drivers", ALL_REGIMES, (model, ALL_COVARIATES), (model, PLAN_FORECAST))
        if a is None or b is None or c is None:
            continue
        name = f"{model} [STAND-IN]" if stand_in and model != "gbm" else model
        change = _ci(c.result.rel, 100.0, "{:+.0f}") + " %"
        lines.append(f"| {label} | {name} | {a.n_windows} | {_ci(a.mae)} | {_ci(b.mae)} | {change} |")
    return lines


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.drivers_evidence", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--start", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--end", required=True)
    parser.add_argument("--every-steps", type=int, default=5, help="candidate cut-offs every N grid steps")
    parser.add_argument("--charge-cutoffs", type=int, default=120, help="at most this many with a scheduled charge")
    parser.add_argument("--other-cutoffs", type=int, default=60, help="at most this many without")
    parser.add_argument("--finetune-steps", type=int, default=None)
    parser.add_argument("--no-finetune", action="store_true")
    parser.add_argument("--allow-stand-in", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs"))
    parser.add_argument("--run-id", default="drivers-evidence")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the backtest on the chosen cut-offs and print the evidence table (1 when something is missing)."""
    args = parse(argv)
    started = time.monotonic()
    settings = load_settings(args.config)
    task = next(t for t in settings.forecaster.tasks if t.name == args.task)
    store = ForecastStore(InfluxClient(settings.influx), settings.site)
    plan = make_plan(
        task, parse_utc_ns(args.start), parse_utc_ns(args.split), parse_utc_ns(args.end), every_steps=args.every_steps
    )
    drivers = read_plan_drivers(store, plan, settings.forecaster)
    charged = charge_cutoffs(drivers, plan.cutoffs, plan.step_ns, task.horizon_steps)
    picked = pick_evenly(sorted(charged), args.charge_cutoffs)
    others = pick_evenly(sorted(set(plan.cutoffs) - charged), args.other_cutoffs)
    print(f"{len(charged)} of {len(plan.cutoffs)} candidate cut-offs hold a scheduled charge; using {len(picked)} of "
          f"them and {len(others)} without; {len(drivers.plans) if drivers else 0} plan snapshots, "
          f"{len(drivers.pv) if drivers else 0} PV issues", flush=True)  # fmt: skip
    if not picked:
        return 1
    plan = dataclasses.replace(plan, cutoffs=tuple(sorted({*picked, *others})))
    series = read_held_series(store, plan, 0)
    models, stand_in = load_models(settings, args.out, args.allow_stand_in)
    if models is None:
        return 1
    request = Request(
        run_id=args.run_id,
        out_dir=args.out,
        seed=args.seed,
        finetune=not args.no_finetune,
        finetune_steps=args.finetune_steps,
        dataset=f"{settings.site}: cut-offs chosen by the plan known at each (bench.drivers_evidence)",
        base_model=STAND_IN_VERSION if stand_in else settings.forecaster.base_model,
        stand_in=stand_in,
        started_s=started,
    )
    outcome = run_backtest(
        plan, series, models, settings=settings.forecaster, store=store, request=request, drivers=drivers
    )
    run_dir = outcome.run_dir
    print(f"run folder {run_dir} ({outcome.manifest['wall_s']} s wall time)\n")
    print("| windows | model | n | MAE W without plan+PV [95 % CI] | MAE W with plan+PV [95 % CI] | change [95 % CI] |")
    print("|---|---|---|---|---|---|")
    for label, chosen, suffix in (("with a scheduled charge", picked, "-charge"), ("without", others, "-nocharge")):
        if not chosen:
            continue
        folder = subset_run(run_dir, set(chosen), run_dir.with_name(run_dir.name + suffix), label)
        for line in rows_of(build_tables(load_run(folder), seed=0, resamples=args.resamples), label, stand_in):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
