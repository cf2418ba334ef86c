"""The mini Chronos-2's loss plot and model card, written from its training log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COMMAND = "nice -n 10 python -m forecaster.mini.train --out forecaster/mini/weights   # all defaults"


def plot_loss(log: dict[str, Any], path: Path) -> None:
    """Training loss (mean of every 10 steps) and synthetic validation loss against steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    train = log.get("train", [])
    val = log.get("val", [])
    if train:
        ax.plot([p["step"] for p in train], [p["loss"] for p in train], label="training loss (synthetic)", lw=1)
    if val:
        ax.plot([p["step"] for p in val], [p["loss"] for p in val], "o-", label="validation loss (held-out synthetic)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("2 x pinball loss, 21 quantiles")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("mini Chronos-2 pretraining from random weights")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_card(log: dict[str, Any], out: Path) -> None:
    """MODEL_CARD.md beside the weights: what it is, the data, the steps, the loss, what it is not."""
    cfg = log["config"]
    val = log["val"]
    size = log["size"]
    text = f"""# mini Chronos-2 (a STAND-IN, pretrained on synthetic series only)

A {log["parameters"]:,}-parameter Chronos-2 (the chronos-forecasting 2.3.2 architecture: d_model
{size["d_model"]}, {size["num_layers"]} layers, {size["num_heads"]} heads, d_ff {size["d_ff"]}; patch 16, the 21
quantile levels, REG token, arcsinh), trained by this project from random weights.

**What it is:** the stand-in the forecaster uses when the released Chronos-2 weights are unreachable (the
demo, the tests, backtests with `--allow-stand-in`; forecaster/standin.py). It is labelled a stand-in
wherever it appears (`stand-in:mini`, `[STAND-IN]`). It has learned generic shapes (levels, daily and
weekly cycles, regime switches, covariate drivers), so it forecasts sensibly and a LoRA fine-tune on a
site's data changes what it does: the pipeline and the effect of fine-tuning can be shown offline.

**What it is not:** Chronos-2. Its numbers say nothing about amazon/chronos-2's accuracy. It never saw
real data: no recording, no evaluation window, no simulator output. It is small and briefly trained, so
expect it to lose to the real model and often to persistence.

## Data
Synthetic series only, drawn fresh every {cfg["chunk_steps"]} steps by `forecaster/mini/synth.py` (seed
{cfg["seed"]}), {cfg["tasks_per_chunk"]} tasks per draw:

- battery sites on 1/5/15-minute grids: PV (daylight bell x clouds), a load (daily and weekly shape,
  appliance spikes, step changes) and a battery that switches between parked, self-consumption
  (PV - load within its power limit, stopped at SoC limits) and a daily charge/discharge schedule; SoC and
  voltage follow it; time of day and day of week as known-future covariates; random sign convention;
- generic series: trend, seasonality, AR noise, step changes, sparse spikes, on/off regimes, with 0-3
  drivers (past-only leading indicators or known-future drivers).

Lengths {cfg["min_length"]}-{cfg["max_length"]} steps, horizons {sorted(set(cfg["horizons"]))} steps, a few
NaN gaps. A separately seeded set of {cfg["validation_tasks"]} tasks gives the validation loss.

## Training
- {log.get("steps_done", "?")} steps of {cfg["batch_rows"]} rows (target + covariate rows), context up to
  {cfg["context_steps"]} steps; AdamW (weight decay {cfg["weight_decay"]}), peak learning rate
  {cfg["learning_rate"]}, {cfg["warmup_steps"]} warm-up steps, cosine decay to 2 % driven by steps, CPU time
  or wall time, whichever is furthest; dropout 0; {cfg["threads"]} torch thread.
- Budget: at most {cfg["steps"]} steps, {cfg["cpu_minutes"]:g} CPU-minutes or {cfg["minutes"]:g}
  wall-minutes. This run stopped at the wall limit after {log.get("cpu_s", 0) / 60:.1f} CPU-minutes
  ({log.get("wall_s", 0) / 60:.1f} wall-minutes): the 2-core machine was shared with other jobs.
- Validation loss (2 x pinball, 21 levels): {val[0]["loss"]:.3f} at step 0, {val[-1]["loss"]:.3f} at the
  end (training_log.json has every point).
- The context is capped at {cfg["context_steps"]} steps (`chronos_config.context_length`): longer
  contexts are cut to their last {cfg["context_steps"]} steps when it forecasts.

![loss](loss.png)

## Re-run
```
{COMMAND}
```
The schedule follows wall and CPU time when those limits bind, so a re-run on another machine gives a
model of the same recipe, not bit-identical weights. For a step-driven, repeatable schedule give the
steps and lift the time limits, e.g. `--steps {log.get("steps_done", 2000)} --cpu-minutes 600 --minutes 600`.
"""
    (out / "MODEL_CARD.md").write_text(text, encoding="utf-8")
