"""The forecasting part of `make demo`: backfill days of simulated history, run the forecaster's backtest
(budgeted so the whole demo stays under 10 minutes on 2 cores), render the report, print every model's score."""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from bess_common.timefmt import NS, iso_utc
from deploy.demo_procs import follow, say, timed
from deploy.localservices import InfluxServer
from forecaster.run_contract import ALL_COVARIATES, MANIFEST_FILE, NO_VARIANT, SCORES_FILE, TARGET_ONLY
from forecaster.standin import MINI_FINETUNE_LEARNING_RATE

HISTORY_DAYS = 8
TEST_DAYS = 2  # the last 2 days are forecast (cut-offs); the 6 before them train the fine-tune
DEMO_TASK = "intraday"  # 1-min resolution, 1 h horizon (the shipped default task)
HUB_HOST = "huggingface.co"


@dataclass(frozen=True)
class Budget:
    """Cut-offs and fine-tune steps that fit the time limit with this model; env overrides for the backtest."""

    max_cutoffs: int
    finetune_steps: int
    env: dict[str, str]
    why: str


def budget() -> Budget:
    """Real Chronos-2 (~8 s per cut-off and ~7 s per LoRA step on 2 cores) or, without network access to the
    weights, the mini Chronos-2 stand-in (cheap: more cut-offs and steps, and a learning rate suited to a LoRA
    adapter on a 1.4 M-parameter model)."""
    base_model = os.environ.get("BESS_FORECASTER__BASE_MODEL", "amazon/chronos-2")
    if Path(base_model).expanduser().is_dir():
        return Budget(36, 20, {}, f"base model from {base_model}")
    try:
        socket.getaddrinfo(HUB_HOST, 443)
    except OSError:
        offline = {"HF_HUB_OFFLINE": "1", "BESS_FORECASTER__FINETUNE__LEARNING_RATE": str(MINI_FINETUNE_LEARNING_RATE)}
        return Budget(
            120,
            100,
            offline,
            f"no network access to {HUB_HOST}: the pretrained {base_model} cannot be "
            f"downloaded, so the backtest uses the STAND-IN: a mini Chronos-2 pretrained on synthetic series "
            f"only, labelled as such everywhere (fine-tune learning rate {MINI_FINETUNE_LEARNING_RATE:g} for it)",
        )
    return Budget(36, 20, {}, f"{HUB_HOST} reachable: {base_model} is downloaded on first use")


def backfill(workdir: Path, influx: InfluxServer, start_s: int, end_s: int) -> int:
    """Simulated history at 60 s steps through the simulator's backfill (same physics as the live GX)."""
    days = (end_s - start_s) / 86400
    span = f"{iso_utc(start_s * NS)} .. {iso_utc(end_s * NS)}"
    say(f"backfilling {days:g} days of simulated history at 60 s steps ({span})")
    code, _ = follow(
        [
            "collector",
            "simulate",
            "--backfill",
            "--start",
            iso_utc(start_s * NS),
            "--end",
            iso_utc(end_s * NS),
            "--step-s",
            "60",
            "--influx-url",
            influx.url,
            "--database",
            "bess",
            "--site",
            "demo",
            "--seed",
            "1",
        ],
        workdir / "backfill.log",
        "backfill",
    )
    return code


def backtest(workdir: Path, start_s: int, split_s: int, end_s: int, args: argparse.Namespace) -> Path | None:
    """The forecaster's backtest with a short fine-tune; the run folder, or None on failure."""
    config = workdir / "config.toml"
    plan = budget()
    say(plan.why)
    plan = Budget(args.max_cutoffs or plan.max_cutoffs, args.finetune_steps or plan.finetune_steps, plan.env, plan.why)
    say(
        f"backtest: task {DEMO_TASK}, fine-tune on {iso_utc(start_s * NS)} .. {iso_utc(split_s * NS)} "
        f"({plan.finetune_steps} LoRA "
        f"steps), {plan.max_cutoffs} cut-offs after the split, 3 covariate variants"
    )
    code, plain = follow(
        [
            "forecaster",
            "backtest",
            "--config",
            str(config),
            "--task",
            DEMO_TASK,
            "--start",
            iso_utc(start_s * NS),
            "--split",
            iso_utc(split_s * NS),
            "--end",
            iso_utc(end_s * NS),
            "--max-cutoffs",
            str(plan.max_cutoffs),
            "--finetune-steps",
            str(plan.finetune_steps),
            "--out",
            str(workdir / "runs"),
            "--run-id",
            "demo",
            "--seed",
            "0",
            "--dataset",
            "simulated (make demo)",
            "--allow-stand-in",
        ],
        workdir / "backtest.log",
        "backtest",
        plan.env,
    )
    run = next((line.split("run: ", 1)[1] for line in plain if line.startswith("run: ")), None)
    return Path(run) if code == 0 and run else None


def report(workdir: Path, run: Path) -> Path | None:
    """Render the report of the run; the HTML path, or None on failure."""
    out = workdir / "report"
    code, plain = follow(
        ["forecaster", "report", "--run", str(run), "--out", str(out)], workdir / "report.log", "report"
    )
    html = next((line.split("html: ", 1)[1] for line in plain if line.startswith("html: ")), None)
    return Path(html) if code == 0 and html else None


SHOWN_VARIANTS = (ALL_COVARIATES, TARGET_ONLY, NO_VARIANT)


def summary_lines(run: Path) -> list[str]:
    """Every model's MAE and skill over all regimes and leads (the run's scores.csv): base vs fine-tuned
    Chronos-2 (or its stand-in, tagged as in the report), the site-trained gradient-boosting model, the
    baselines."""
    import json

    import pandas as pd

    from forecaster.report.labels import model_label

    stand_in = bool(json.loads((run / MANIFEST_FILE).read_text())["base_model_is_stand_in"])  # a required key
    scores = pd.read_csv(run / SCORES_FILE)
    rows = scores[(scores["regime"] == "all") & (scores["lead_bucket"] == "all")]
    rows = rows[rows["variant"].isin(SHOWN_VARIANTS)]
    labels = [model_label(str(m), stand_in) for m in rows["model"]]
    width = max([len("model"), *map(len, labels)]) + 2
    lines = [f"{'model':<{width}}{'covariates':<16}{'MAE':>10}{'skill':>8}{'windows':>9}"]
    for label, row in zip(labels, rows.itertuples(), strict=True):
        lines.append(f"{label:<{width}}{row.variant!s:<16}{row.mae_w:>8.0f} W{row.skill:>8.2f}{int(row.n_windows):>9d}")
    return lines


def forecast_story(
    workdir: Path, influx: InfluxServer, live_start_s: float, timings: dict[str, float], args: argparse.Namespace
) -> int:
    """Backfill, backtest, report; each stage timed."""
    end_s = int(live_start_s) // 60 * 60
    start_s = end_s - int(args.history_days * 86400)
    split_s = end_s - int(min(TEST_DAYS, args.history_days / 4) * 86400)
    with timed("backfill", timings):
        if backfill(workdir, influx, start_s, end_s) != 0:
            say(f"backfill failed; see {workdir / 'backfill.log'}")
            return 1
    with timed("backtest", timings):
        run = backtest(workdir, start_s, split_s, end_s, args)
    if run is None:
        say(f"backtest failed; see {workdir / 'backtest.log'}")
        return 1
    with timed("report", timings):
        html = report(workdir, run)
    if html is None:
        say(f"report failed; see {workdir / 'report.log'}")
        return 1
    say("models over every held-back window (skill = 1 - MAE / persistence's MAE; details in the report):")
    for line in summary_lines(run):
        print(f"    {line}", flush=True)
    say(f"run folder: {run}  (forecasts.csv, scores.csv, manifest.json; forecasts in InfluxDB with run=demo)")
    say(f"REPORT: {html}")
    return 0
