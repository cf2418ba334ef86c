"""How much a LoRA fine-tune of the mini Chronos-2 stand-in lowers its MAE on held-back simulated windows: the
scheduled job's own fine-tune and gate code (forecaster.finetune: training_inputs, fit, gate_against_active)
run straight on the simulator's minute series (bench.simsite), no InfluxDB, so a design can be sized on
development seeds before a test is run once on a fresh one (docs/forecast-quality.md).

    python -m bench.mini_finetune_study --seed 3 --first-day 20300 --gate-days 10 --windows 200

Prints one JSON line: the MAE change (candidate - base) overall and per regime, in % of the base's MAE, with
the gate's 95 % interval (paired window bootstrap), the windows per regime and the wall time."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.simsite import minute_series
from forecaster import finetune as ft
from forecaster.config import FinetuneSettings, ForecasterSettings, ForecastTask
from forecaster.models import ModelSet, load_pipeline
from forecaster.standin import MINI_FINETUNE_LEARNING_RATE, build_stand_in
from forecaster.windows import DAY_S, NS

MINI_TASK = ForecastTask(name="intraday", context_steps=1024)  # the mini's context (longer is cut to 1024)


def mini_finetune_settings(
    *,
    train_days: float,
    validation_days: float,
    gate_days: float,
    gate_windows: int,
    num_steps: int = 300,
    learning_rate: float = MINI_FINETUNE_LEARNING_RATE,
) -> FinetuneSettings:
    """[forecaster.finetune] for the mini on MINI_TASK: its context, the documented stand-in learning rate,
    an evaluation every 75 steps; the study and tests/integration/test_mini_finetune.py both use it."""
    return FinetuneSettings(
        task=MINI_TASK.name,
        train_days=train_days,
        validation_days=validation_days,
        gate_days=gate_days,
        gate_windows=gate_windows,
        num_steps=num_steps,
        learning_rate=learning_rate,
        context_steps=MINI_TASK.context_steps,
        eval_steps=75,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seed", type=int, required=True, help="the simulator's seed")
    p.add_argument("--first-day", type=int, default=20_100, help="first simulated UTC day (days since 1970)")
    p.add_argument("--train-days", type=float, default=8.0)
    p.add_argument("--validation-days", type=float, default=1.0)
    p.add_argument("--gate-days", type=float, default=10.0)
    p.add_argument("--windows", type=int, default=200, help="gate windows")
    p.add_argument("--steps", type=int, default=300, help="fine-tune steps")
    p.add_argument("--learning-rate", type=float, default=MINI_FINETUNE_LEARNING_RATE)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def percent(change: list[float | None], base_mae_w: float) -> list[float | None]:
    """[change, low, high] in W as % of the base's MAE (None stays None)."""
    return [None if x is None else round(100.0 * x / base_mae_w, 1) for x in change]


def study(args: argparse.Namespace) -> dict[str, Any]:
    began = time.monotonic()
    days = int(-(-(args.train_days + args.validation_days + args.gate_days) // 1))  # as the test writes them
    series, start_ns = minute_series(seed=args.seed, first_day=args.first_day, days=days)
    end_ns = start_ns + days * DAY_S * NS
    task = MINI_TASK
    finetune = mini_finetune_settings(
        train_days=args.train_days,
        validation_days=args.validation_days,
        gate_days=args.gate_days,
        gate_windows=args.windows,
        num_steps=args.steps,
        learning_rate=args.learning_rate,
    )
    with tempfile.TemporaryDirectory() as tmp:
        base_dir = build_stand_in(Path(tmp) / "mini")
        settings = ForecasterSettings(
            base_model=str(base_dir),
            registry_dir=Path(tmp) / "models",
            tasks=[task],
            num_threads=args.threads,
            finetune=finetune,
        )
        pipeline = load_pipeline(str(base_dir), args.threads)
        split = ft.make_split(end_ns, task.resolution_s, args.train_days, args.validation_days, args.gate_days)
        first = (split.train_start_ns - start_ns) // (60 * NS)
        window = {k: v[first:] for k, v in series.items()}
        train, validation = ft.training_inputs(
            window, split.train_start_ns, task, split, context_steps=task.context_steps
        )
        torch.manual_seed(0)
        tuned = ft.fit(
            pipeline,
            train,
            validation,
            task,
            settings,
            output_dir=Path(tmp) / "ckpt",
            progress=ft.ProgressCallback(False),
        )
        decision, scores = ft.gate_against_active(
            tuned, ModelSet(pipeline, str(base_dir)), None, window, split.train_start_ns,
            task=task, split=split, settings=settings,
        )  # fmt: skip
    base = scores["incumbent_mae_w"]
    return {
        "seed": args.seed,
        "first_day": args.first_day,
        "train_days": args.train_days,
        "gate_days": args.gate_days,
        "steps": args.steps,
        "learning_rate": args.learning_rate,
        "windows": scores["windows"],
        "base_mae_w": {k: round(v, 1) for k, v in base.items()},
        "mae_change_pct": {k: percent(v, base[k]) for k, v in scores["mae_change_w"].items() if base.get(k)},
        "promote": decision.promote,
        "wall_s": round(time.monotonic() - began, 1),
    }


def main(argv: list[str] | None = None) -> None:
    print(json.dumps(study(parse_args(argv))))


if __name__ == "__main__":
    main()
