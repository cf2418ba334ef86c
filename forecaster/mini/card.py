"""The mini Chronos-2's loss plot and model card, written from its training log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forecaster.standin import MINI_FINETUNE_LEARNING_RATE

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
  {cfg["learning_rate"]}, {cfg["warmup_steps"]} warm-up steps, then cosine decay to 2 % over the
  {cfg["steps"]} steps (driven by the step count only); gradients clipped at 1; dropout 0;
  {cfg["threads"]} torch thread.
- {_cost(log)}
- Validation loss (2 x pinball, 21 levels, held-out synthetic set): {_val_points(val)}. The training loss
  is noisier (every chunk of steps draws new series); training_log.json has every point.
- The context is capped at {cfg["context_steps"]} steps (`chronos_config.context_length`): longer
  contexts are cut to their last {cfg["context_steps"]} steps when it forecasts.

![loss](loss.png)

## Fine-tuning it
Set `[forecaster.finetune] learning_rate = {MINI_FINETUNE_LEARNING_RATE:g}` (`MINI_FINETUNE_LEARNING_RATE` in
forecaster/standin.py; `make demo` sets it): the default 1e-5 is sized for the 120 M-parameter Chronos-2.
What 300 such steps on simulated site data do to its forecasts, measured on held-back windows with
95 % intervals: docs/forecast-quality.md (tests/integration/test_mini_finetune.py).

## Re-run
```
{COMMAND}
```
{_rerun(log)}
"""
    (out / "MODEL_CARD.md").write_text(text, encoding="utf-8")


def _cost(log: dict[str, Any]) -> str:
    """Steps, CPU and wall time, and the machine, as recorded."""
    machine = log.get("machine") or {}
    where = f" on {machine['cpu']} ({machine['cores']} cores)" if machine.get("cpu") else ""
    cost = (
        f"Cost: {log.get('cpu_s', 0) / 60:.1f} CPU-minutes, {log.get('wall_s', 0) / 60:.1f} wall-minutes{where}"
        f" (torch {machine.get('torch', '?')}, chronos-forecasting {machine.get('chronos_forecasting', '?')})."
    )
    if log.get("stopped_early"):
        return f"{cost} STOPPED EARLY by the safety limit: {log['stopped_early']}."
    return f"{cost} All {log['config']['steps']} steps ran (no time limit was reached)."


def _val_points(val: list[dict[str, Any]]) -> str:
    """A few validation-loss points: start, quarters, end."""
    if not val:
        return "not recorded"
    picks = sorted({0, len(val) // 4, len(val) // 2, 3 * len(val) // 4, len(val) - 1})
    return ", ".join(f"{val[i]['loss']:.3f} at step {val[i]['step']}" for i in picks)


def _rerun(log: dict[str, Any]) -> str:
    """What a re-run gives."""
    if log.get("stopped_early"):
        return (
            "This run was stopped by a time limit, so its weights are not what the step budget promises; a re-run"
            " that completes the steps gives different weights."
        )
    return (
        "The learning-rate schedule, the data (seeded synthetic draws) and the initial weights depend on the"
        " config only, never on the clock, so a re-run with the same config, torch and chronos-forecasting on"
        " the same kind of CPU gives bit-identical weights (tests/unit/test_mini.py runs the script twice, once"
        " under a clock that jumps, and compares the weights bit for bit). Other CPUs or library versions may"
        " round differently. The time limits (`--cpu-minutes`, `--minutes`) are a safety stop only; a run they"
        " stop is recorded as stopped early."
    )
