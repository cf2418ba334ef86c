"""The forecaster benchmark's table rows from each scenario's JSON (pure: bench.forecaster_bench runs the
scenarios, bench.forecaster_scenarios measures them); a scenario that failed (None) gives no rows."""

from __future__ import annotations

from typing import Any

from bench.common import Row, fmt
from bench.forecaster_core import estimate_finetune
from forecaster.config import FinetuneSettings

CYCLE_TARGET_S = 3.0
RSS_TARGET_MB = 1500.0


def batching_rows(r: dict[str, Any] | None) -> list[Row]:
    """One window per forward vs one big forward."""
    if r is None:
        return []
    better = "one window per forward" if r["single_wps"] >= r["batched_wps"] else "all windows in one forward"
    return [
        Row(
            "batching, ctx 2048 H 60: windows/s one per forward vs all in one",
            f"{r['single_wps']:.2f} vs {r['batched_wps']:.2f}",
            "",
            None,
            f"{r['windows']} windows, same process; faster here: {better} (ratio "
            f"{r['single_wps'] / r['batched_wps']:.2f}); ModelSet.predict runs one window per forward",
        )
    ]


def cycle_rows(r: dict[str, Any] | None, four: dict[str, Any] | None = None) -> list[Row]:
    """The intraday cycle against both targets; `four`: the same cycle with 4 covariates instead of 8."""
    if r is None:
        return []
    fell = ", ".join(r["failures"]) or "none"
    extra = []
    if four is not None:
        extra.append(
            Row(
                "intraday cycle with 4 covariates (voltage, SoC, PV past; tod_sin known), ctx 2048, 1 h",
                fmt(four["cycle_s"], 2, "s"),
                "< 3 s",
                four["cycle_s"] < CYCLE_TARGET_S,
                f"same run and code path, 5 rows per window instead of 9: models {fmt(four['models_s'], 2, 's')}, "
                f"read {fmt(four['read_s'], 2, 's')}; the '4 covariates' shape (5 rows)",
            )
        )
    return [
        Row(
            "intraday cycle (default task: 4 measured + 4 time covariates), ctx 2048, 1 h ahead",
            fmt(r["cycle_s"], 2, "s"),
            "< 3 s",
            r["cycle_s"] < CYCLE_TARGET_S,
            f"ForecastService.forecast against influxd, median of {len(r['cycles_s'])}; read "
            f"{fmt(r['read_s'], 2, 's')}, models {fmt(r['models_s'], 2, 's')}; {r['written']} points written; "
            f"fallbacks: {fell}",
        ),
        Row(
            "both models resident: peak RSS",
            fmt(r["peak_rss_mb"], 0, "MB"),
            "< 1.5 GB",
            r["peak_rss_mb"] < RSS_TARGET_MB,
            f"base {r['params']['base']:,} + adapter "
            f"{r['params']['adapter']:,} parameters, one process through the cycles",
        ),
        *extra,
    ]


def finetune_rows(r: dict[str, Any] | None, read_s_28: float, predict: dict[Any, dict[str, Any]]) -> list[Row]:
    """Seconds per LoRA step and the default scheduled fine-tune, extrapolated."""
    if r is None:
        return []
    cfg = FinetuneSettings()
    # the fine-tune evaluates and gates on the default task's 9-row windows
    p512 = predict.get((512, 60, "base+adapter", "default"), {}).get("per_window_s", {}).get("base", float("nan"))
    p2048 = predict.get((2048, 60, "base+adapter", "default"), {}).get("per_window_s", {}).get("base", float("nan"))
    est = estimate_finetune(
        read_s=read_s_28 * 32 / 28,
        first_step_s=r["first_step_s"],
        step_s=r["step_s"],
        num_steps=cfg.num_steps,
        eval_steps=cfg.eval_steps,
        validation_windows=8,
        predict_ctx_train_s=p512,
        gate_windows=cfg.gate_windows,
        predict_ctx_task_s=p2048,
    )
    return [
        Row(
            "fine-tune: seconds per LoRA step (batch 32 rows, ctx 512)",
            fmt(r["step_s"], 2, "s"),
            "",
            None,
            f"median of {len(r['steps_s'])} steps after the first ({fmt(r['first_step_s'], 1, 's')} incl. set-up);"
            " a checkpoint is saved every step here (eval_steps=1 to time each step)",
        ),
        Row("fine-tune: peak RSS", fmt(r["peak_rss_mb"], 0, "MB"), "", None, "the fine-tune child process"),
        Row(
            f"fine-tune: default scheduled run ({cfg.num_steps} steps), estimate from the parts",
            fmt(est.total_s / 60, 1, "min"),
            "",
            None,
            f"estimate (checks the run below): read {fmt(est.read_s, 0, 's')} + train {fmt(est.train_s, 0, 's')} + "
            f"{cfg.num_steps // cfg.eval_steps} evaluations x 8 windows {fmt(est.eval_s, 0, 's')} + gate "
            f"back-test 2 x {cfg.gate_windows} windows {fmt(est.gate_s, 0, 's')}",
        ),
    ]


def backtest_rows(r: dict[str, Any] | None) -> list[Row]:
    """Our backtest pipeline vs the model's own predict."""
    if r is None:
        return []
    ratio = r["ours_wps"] / r["raw_wps"]
    return [
        Row(
            "gate back-test (backtest_window_sums): windows/s vs pipeline.predict",
            f"{r['ours_wps']:.3f} vs {r['raw_wps']:.3f}",
            "",
            None,
            f"{r['windows']} windows, ctx 2048 H 60; ratio {ratio:.3f} (overhead of our code {1 / ratio - 1:+.1%})",
        )
    ]


def backtest_run_rows(r: dict[str, Any] | None) -> list[Row]:
    """The backtest command's pipeline vs the model's own predict of the same windows."""
    if r is None:
        return []
    ratio = r["ours_cps"] / r["raw_cps"]
    return [
        Row(
            "backtest command pipeline (run_backtest): cut-offs/s vs pipeline.predict",
            f"{r['ours_cps']:.3f} vs {r['raw_cps']:.3f}",
            "",
            None,
            f"{r['cutoffs']} cut-offs x 3 covariate variants = {r['forwards']} forwards, base only (no fine-tune), "
            f"ctx 2048 H 60, forecasts written to influxd, scored, run folder written; ratio {ratio:.3f} "
            f"(overhead of our code {1 / ratio - 1:+.1%})",
        )
    ]
