"""Pretrain the mini Chronos-2 from random weights on synthetic series only (forecaster/mini/synth.py).

Re-run (4000 steps, one torch thread; the learning-rate schedule depends on the step count only, so a re-run
gives the same weights; 45 CPU-minutes or 240 wall-minutes stop it early as a safety net, recorded as such):

    nice -n 10 python -m forecaster.mini.train --out forecaster/mini/weights

Every chunk of steps draws fresh synthetic tasks (so the model never sees a series twice); a fixed,
separately seeded synthetic set gives the validation loss. Writes config.json + model.safetensors,
training_log.json, loss.png and MODEL_CARD.md into --out (a partial checkpoint after every chunk of steps).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecaster.mini.synth import make_tasks

MINI_SIZE = {"d_model": 128, "d_kv": 32, "d_ff": 512, "num_layers": 4, "num_heads": 4}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the weights (recorded in training_log.json and the card)."""

    steps: int = 4000
    cpu_minutes: float = 45.0
    minutes: float = 240.0
    batch_rows: int = 32
    context_steps: int = 1024
    horizons: tuple[int, ...] = (64, 64, 128)
    learning_rate: float = 1e-3
    warmup_steps: int = 150
    weight_decay: float = 0.01
    chunk_steps: int = 50
    tasks_per_chunk: int = 200
    min_length: int = 192
    max_length: int = 1400
    validation_tasks: int = 48
    seed: int = 1234
    threads: int = 1


def build_model(seed: int, context_steps: int = 1024) -> Any:
    """A random-weight mini Chronos-2 (dropout 0: the synthetic stream is never repeated). Its
    context_length is the trained context, so the pipeline caps longer contexts to what it has seen."""
    import torch
    from chronos.chronos2 import Chronos2Model

    from forecaster.modelbuild import chronos2_config

    torch.manual_seed(seed)
    config = chronos2_config(MINI_SIZE)
    config.dropout_rate = 0.0
    config.chronos_config["context_length"] = context_steps
    return Chronos2Model(config)


def prepare(tasks: list[dict[str, Any]], horizon: int) -> list[Any]:
    """Task dicts -> Chronos-2 PreparedInputs (one at a time: the schemas differ across tasks)."""
    from chronos.chronos2.preprocess import from_list_of_dicts

    return [from_list_of_dicts([task], prediction_length=horizon)[0] for task in tasks]


def dataset(prepared: list[Any], cfg: TrainConfig, horizon: int, mode: str) -> Any:
    """A Chronos-2 batch iterator over prepared tasks."""
    from chronos.chronos2.dataset import Chronos2Dataset, DatasetMode

    return Chronos2Dataset(
        prepared,
        context_length=cfg.context_steps,
        prediction_length=horizon,
        batch_size=cfg.batch_rows,
        output_patch_size=16,
        min_past=64,
        mode=DatasetMode.TRAIN if mode == "train" else DatasetMode.VALIDATION,
    )


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 2 % of the peak, driven by the step count only (so a re-run with
    the same config gives the same weights however loaded the machine is)."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.learning_rate * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_batches(cfg: TrainConfig) -> Iterator[tuple[int, dict[str, Any]]]:
    """(horizon, batch) forever: a fresh synthetic chunk every `chunk_steps` steps."""
    chunk = 0
    while True:
        horizon = cfg.horizons[chunk % len(cfg.horizons)]
        tasks = make_tasks(cfg.seed + 1 + chunk, cfg.tasks_per_chunk, cfg.min_length, cfg.max_length)
        batches = iter(dataset(prepare(tasks, horizon), cfg, horizon, "train"))
        for _ in range(cfg.chunk_steps):
            yield horizon, next(batches)
        chunk += 1


def validation_loss(model: Any, batches: list[dict[str, Any]]) -> float:
    """Mean loss over the fixed validation batches (last window of each validation task)."""
    import torch

    model.eval()
    with torch.no_grad():
        losses = [float(model(**batch).loss) for batch in batches]
    model.train()
    return float(np.mean(losses))


def run(cfg: TrainConfig, out: Path) -> dict[str, Any]:
    """Train and save; returns the training log."""
    import torch

    torch.set_num_threads(cfg.threads)
    np.random.seed(cfg.seed)  # Chronos2Dataset samples cut points with the global numpy RNG
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(cfg.seed, cfg.context_steps)
    params = sum(p.numel() for p in model.parameters())
    val_tasks = make_tasks(cfg.seed - 1, cfg.validation_tasks, cfg.min_length, cfg.max_length)
    val_batches = list(dataset(prepare(val_tasks, 64), cfg, 64, "validation"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    log: dict[str, Any] = {"config": asdict(cfg), "size": MINI_SIZE, "parameters": params, "train": [], "val": []}
    log["machine"] = machine()
    log["val"].append({"step": 0, "loss": validation_loss(model, val_batches)})
    print(f"mini Chronos-2: {params:,} parameters; step 0 validation loss {log['val'][0]['loss']:.4f}", flush=True)
    start = time.monotonic()
    window: list[float] = []
    model.train()
    cpu_start = time.process_time()
    for step, (_, batch) in enumerate(train_batches(cfg)):
        time_fraction = max(
            (time.monotonic() - start) / (cfg.minutes * 60.0),
            (time.process_time() - cpu_start) / (cfg.cpu_minutes * 60.0),
        )
        if step >= cfg.steps:
            break
        if time_fraction >= 1.0:  # a safety stop: the weights are then not what the config promises
            log["stopped_early"] = f"time limit after {step} of {cfg.steps} steps"
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        window.append(loss.item())
        done = step + 1
        if done % 10 == 0:
            elapsed = time.monotonic() - start
            log["train"].append({"step": done, "loss": float(np.mean(window)), "elapsed_s": round(elapsed, 1)})
            window = []
            eta = elapsed / done * (cfg.steps - done)
            log["train"][-1]["cpu_s"] = round(time.process_time() - cpu_start, 1)
            print(f"step {done}/{cfg.steps} loss {log['train'][-1]['loss']:.4f} ETA {eta / 60:.1f} min", flush=True)
        if done % cfg.chunk_steps == 0:
            log["val"].append({"step": done, "loss": validation_loss(model, val_batches)})
            print(f"step {done} validation loss {log['val'][-1]['loss']:.4f}", flush=True)
            save(model, log, out, time.monotonic() - start)
    log["steps_done"] = step
    log["cpu_s"] = round(time.process_time() - cpu_start, 1)
    log["val"].append({"step": log["steps_done"], "loss": validation_loss(model, val_batches), "final": True})
    print(f"done: {log['steps_done']} steps, validation loss {log['val'][-1]['loss']:.4f}", flush=True)
    save(model, log, out, time.monotonic() - start)
    return log


def machine() -> dict[str, Any]:
    """Where it ran: CPU model, cores, library versions (recorded in the log and the card)."""
    import os
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with Path("/proc/cpuinfo").open(encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    from importlib.metadata import version

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "chronos_forecasting": version("chronos-forecasting"),
        "python": platform.python_version(),
    }


def save(model: Any, log: dict[str, Any], out: Path, elapsed_s: float) -> None:
    """Weights (safetensors), the training log and the loss plot."""
    from forecaster.mini.card import plot_loss

    log["wall_s"] = round(elapsed_s, 1)
    model.save_pretrained(out)
    (out / "training_log.json").write_text(json.dumps(log, indent=1) + "\n", encoding="utf-8")
    plot_loss(log, out / "loss.png")


def main(argv: list[str] | None = None) -> int:
    """CLI: python -m forecaster.mini.train --out DIR [--steps N]."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps, help="at most this many steps")
    parser.add_argument("--cpu-minutes", type=float, default=TrainConfig.cpu_minutes, help="stop after this CPU time")
    parser.add_argument("--minutes", type=float, default=TrainConfig.minutes, help="stop after this wall time")
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    args = parser.parse_args(argv)
    cfg = TrainConfig(
        steps=args.steps, cpu_minutes=args.cpu_minutes, minutes=args.minutes, threads=args.threads, seed=args.seed
    )
    log = run(cfg, args.out)
    from forecaster.mini.card import write_card

    write_card(log, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
