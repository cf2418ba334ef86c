"""One forecaster scenario per process (`python -m bench.forecaster_scenarios SCENARIO ...`), so the peak
RSS is the scenario's own. Writes its numbers as JSON to --out. Driven by bench.forecaster_bench."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.common import median, proc_rss_mb, self_peak_rss_mb
from bench.forecaster_core import NS, synthetic_series
from bench.forecaster_scenario_inputs import (
    FOUR_COVARIATE_INTRADAY,
    SITE,
    STEP_S,
    bracketed,
    scenario_pipeline,
    scenario_task,
    scenario_windows,
    timed_s,
)
from forecaster.config import FinetuneSettings, ForecasterSettings


def predict(args: argparse.Namespace) -> dict[str, Any]:
    """Per-window latency of base (and the adapter's model when resident) at one ctx/horizon."""
    from forecaster.models import BASE, FINETUNED, ModelSet

    ms = ModelSet(scenario_pipeline(args), str(args.model_dir))
    models = [BASE]
    if args.resident == "base+adapter":
        ms.set_adapter("bench", args.adapter_dir)
        models.append(FINETUNED)
    rss_loaded = proc_rss_mb(os.getpid())
    task = scenario_task(args.ctx, args.horizon, args.shape)
    windows = scenario_windows(task, args.windows + 1)
    for model in models:
        ms.predict(windows[0], model, args.ctx)  # warm-up
    times: dict[str, list[float]] = {m: [] for m in models}
    for window in windows[1:]:
        for model in models:
            began = time.perf_counter()
            ms.predict(window, model, args.ctx)
            times[model].append(time.perf_counter() - began)
    return {
        "per_window_s": {m: median(v) for m, v in times.items()},
        "all_s": times,
        "rss_loaded_mb": rss_loaded,
        "peak_rss_mb": self_peak_rss_mb(),
        "rows": 1 + len(windows[0].past),
    }


def batching(args: argparse.Namespace) -> dict[str, Any]:
    """One window per forward vs every window in one forward, same windows, same process."""
    import torch

    from forecaster.windows import chronos_input

    pipe = scenario_pipeline(args)
    task = scenario_task(args.ctx, args.horizon)
    windows = scenario_windows(task, args.windows + 1)
    rows = 1 + len(windows[0].past)
    inputs = [chronos_input(w) for w in windows[1:]]

    def one_by_one() -> None:
        for x in inputs:
            pipe.predict([x], prediction_length=args.horizon, context_length=args.ctx, batch_size=rows)

    def together() -> None:
        pipe.predict(inputs, prediction_length=args.horizon, context_length=args.ctx, batch_size=rows * len(inputs))

    def warm_up() -> None:
        first = [chronos_input(windows[0])]
        pipe.predict(first, prediction_length=args.horizon, context_length=args.ctx, batch_size=rows)

    with torch.inference_mode():
        single, batched = bracketed(one_by_one, together, warm_up)
    n = len(inputs)
    return {
        "windows": n,
        "single_wps": n / median(single),
        "batched_wps": n / batched,
        "single_s": single,
        "batched_s": batched,
        "peak_rss_mb": self_peak_rss_mb(),
    }


def cycle(args: argparse.Namespace) -> dict[str, Any]:
    """The intraday task's forecast cycle through ForecastService (read, base + fine-tuned + baselines,
    write) against the real InfluxDB, with the adapter active from a registry."""
    from bess_common.config import InfluxSettings
    from bess_common.influx import InfluxClient
    from forecaster.forecast import run_models
    from forecaster.jobs import ForecastService, task_cutoff
    from forecaster.models import ModelSet
    from forecaster.registry import Registry
    from forecaster.store import ForecastStore
    from forecaster.windows import build_window

    with tempfile.TemporaryDirectory(prefix="bench-registry-") as reg_dir:
        registry = Registry(Path(reg_dir))
        registry.add("bench-v1", args.adapter_dir, {"bench": True})
        registry.set_active("bench-v1")
        settings = ForecasterSettings(base_model=str(args.model_dir), registry_dir=Path(reg_dir), num_threads=2)
        if args.shape == "4cov":
            settings = settings.model_copy(update={"tasks": [FOUR_COVARIATE_INTRADAY, *settings.tasks[1:]]})
        client = InfluxClient(InfluxSettings(url=args.influx_url, database=args.database, timeout_s=60.0))
        store = ForecastStore(client, SITE)
        ms = ModelSet(scenario_pipeline(args), str(args.model_dir))
        service = ForecastService(settings, SITE, store, registry, ms)
        task = service.task("intraday")
        at = args.at_ns
        first = service.forecast(task, at_ns=at, run="bench")  # warm-up (and loads the adapter)
        cycles = [timed_s(lambda: service.forecast(task, at_ns=at, run="bench")) for _ in range(args.windows)]
        cutoff = task_cutoff(task, at)
        keys = [task.target, *task.past_covariates]
        start = cutoff - task.context_steps * STEP_S * NS
        read_s = timed_s(lambda: store.read_grid(keys, start, STEP_S, task.context_steps))
        context = store.read_grid(keys, start, STEP_S, task.context_steps)
        window = build_window(
            task.name,
            cutoff,
            STEP_S * NS,
            context,
            target=task.target,
            past_covariates=task.past_covariates,
            known_covariates=task.known_covariates,
            horizon_steps=task.horizon_steps,
        )
        models_s = timed_s(lambda: run_models(window, task.target, ms, task.context_steps))
        client.close()
    return {
        "cycle_s": median(cycles),
        "cycles_s": cycles,
        "read_s": read_s,
        "models_s": models_s,
        "written": first.written,
        "skipped": first.skipped,
        "failures": first.failures or {},
        "adapter": ms.adapter_version,
        "params": ms.param_counts(),
        "peak_rss_mb": self_peak_rss_mb(),
    }


def finetune(args: argparse.Namespace) -> dict[str, Any]:
    """A few LoRA steps through forecaster.finetune.fit (batch 32 rows, context 512): seconds per step."""
    from forecaster import finetune as ft

    pipe = scenario_pipeline(args)
    cfg = FinetuneSettings(num_steps=args.steps, eval_steps=1, context_steps=512, batch_size_rows=32)
    settings = ForecasterSettings(base_model=str(args.model_dir), finetune=cfg, num_threads=args.threads)
    task = next(t for t in settings.tasks if t.name == "intraday")
    end = 1_760_000_000 * NS // (STEP_S * NS) * (STEP_S * NS)
    split = ft.make_split(end, STEP_S, cfg.train_days, cfg.validation_days, cfg.gate_days)
    n = (split.end_ns - split.train_start_ns) // (STEP_S * NS)
    series = synthetic_series(split.train_start_ns, int(n), STEP_S)
    train, _validation = ft.training_inputs(series, split.train_start_ns, task, split, context_steps=512)
    marks: list[float] = []

    class Timed(ft.ProgressCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                marks.append(time.monotonic())

    progress = Timed(tty=False)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-ft-") as out:
        ft.fit(pipe, train, [], task, settings, output_dir=Path(out), progress=progress)
    total = time.monotonic() - began
    steps = [b - a for a, b in itertools.pairwise(marks)]
    return {
        "first_step_s": marks[0] - began if marks else float("nan"),
        "step_s": median(steps),
        "steps_s": steps,
        "logged_steps": len(marks),
        "total_s": total,
        "peak_rss_mb": self_peak_rss_mb(),
    }


def backtest(args: argparse.Namespace) -> dict[str, Any]:
    """The gate back-test (finetune.gate_backtest's pipeline) vs the model's own predict on the same windows."""
    import torch

    from forecaster.metrics import mae_by_regime
    from forecaster.rolling import backtest_window_sums, median_forecaster, rolling_cutoffs, window_at
    from forecaster.windows import chronos_input
    from forecaster.zoo.chronos import ChronosPipeline

    pipe = scenario_pipeline(args)
    task = scenario_task(args.ctx, args.horizon)
    step_ns = STEP_S * NS
    start = 1_760_000_000 * NS // step_ns * step_ns
    n = task.context_steps + (args.windows + 1) * 60 + task.horizon_steps
    series = synthetic_series(start, n, STEP_S)
    lo = start + task.context_steps * step_ns
    cutoffs = rolling_cutoffs(lo, start + n * step_ns, task.horizon_steps * step_ns, args.windows, step_ns)
    windows = [window_at(series, start, task, c) for c in cutoffs]
    rows = 1 + len(windows[0].past)
    levels = tuple(float(q) for q in pipe.quantiles)

    def raw() -> None:
        with torch.inference_mode():
            for w in windows:
                pipe.predict(
                    [chronos_input(w)],
                    prediction_length=task.horizon_steps,
                    context_length=task.context_steps,
                    batch_size=rows,
                )

    def ours() -> None:
        model = ChronosPipeline(pipe, "bench", task.context_steps)
        sums = backtest_window_sums(
            median_forecaster(model, levels), series, start, task, cutoffs=cutoffs, threshold_w=100.0
        )
        mae_by_regime(sums)

    raw_s, ours_s = bracketed(raw, ours)
    k = len(windows)
    return {
        "windows": k,
        "raw_wps": k / median(raw_s),
        "ours_wps": k / ours_s,
        "raw_s": raw_s,
        "ours_s": ours_s,
        "peak_rss_mb": self_peak_rss_mb(),
    }


def backtest_run(args: argparse.Namespace) -> dict[str, Any]:
    """The backtest command's pipeline (forecaster.backtest.run.run_backtest: every covariate variant, base +
    baselines, InfluxDB writes, labels, scores, run folder; no fine-tune) vs the model's own predict of the same
    variant windows. Both in cut-offs per second."""
    import torch

    from bess_common.config import InfluxSettings
    from bess_common.influx import InfluxClient
    from forecaster.backtest.ablation import variant_windows
    from forecaster.backtest.plan import make_plan
    from forecaster.backtest.run import Request, run_backtest
    from forecaster.models import ModelSet
    from forecaster.store import ForecastStore
    from forecaster.windows import chronos_input

    pipe = scenario_pipeline(args)
    models = ModelSet(pipe, str(args.model_dir))
    task = scenario_task(args.ctx, args.horizon)
    step_ns = STEP_S * NS
    g0 = 1_760_000_000 * NS // step_ns * step_ns
    n = task.context_steps + args.windows * 60 + task.horizon_steps
    plan = make_plan(
        task, g0, g0 + task.context_steps * step_ns, g0 + n * step_ns, every_steps=60, max_cutoffs=args.windows
    )
    series = synthetic_series(plan.read_start_ns, plan.n_steps, STEP_S)
    windows = [w for c in plan.cutoffs for w in variant_windows(series, plan.read_start_ns, task, c).values()]
    settings = ForecasterSettings(base_model=str(args.model_dir), num_threads=args.threads)
    client = InfluxClient(InfluxSettings(url=args.influx_url, database=args.database, timeout_s=60.0))
    client.create_database()
    store = ForecastStore(client, SITE)

    def raw() -> None:
        with torch.inference_mode():
            for w in windows:
                pipe.predict(
                    [chronos_input(w)],
                    prediction_length=task.horizon_steps,
                    context_length=task.context_steps,
                    batch_size=1 + len(w.past),
                )

    with tempfile.TemporaryDirectory(prefix="bench-bt-") as out:

        def ours() -> None:
            request = Request(run_id=f"bench-{time.monotonic_ns()}", out_dir=Path(out), finetune=False)
            run_backtest(plan, series, models, settings=settings, store=store, request=request)

        raw_s, ours_s = bracketed(raw, ours)
    client.close()
    k = len(plan.cutoffs)
    return {
        "cutoffs": k,
        "forwards": len(windows),
        "raw_cps": k / median(raw_s),
        "ours_cps": k / ours_s,
        "raw_s": raw_s,
        "ours_s": ours_s,
        "peak_rss_mb": self_peak_rss_mb(),
    }


def profile(args: argparse.Namespace) -> dict[str, Any]:
    """torch.profiler over one run_models (base + fine-tuned + baselines, ctx/horizon of the task)."""
    import torch
    from torch.profiler import ProfilerActivity

    from forecaster.forecast import run_models
    from forecaster.models import ModelSet

    ms = ModelSet(scenario_pipeline(args), str(args.model_dir))
    ms.set_adapter("bench", args.adapter_dir)
    task = scenario_task(args.ctx, args.horizon)
    window = scenario_windows(task, 1)[0]
    run_models(window, task.target, ms, task.context_steps)  # warm-up
    with torch.profiler.profile(activities=[ProfilerActivity.CPU]) as prof:
        run_models(window, task.target, ms, task.context_steps)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows)
    return {"table": table}


SCENARIOS = {
    "predict": predict,
    "batching": batching,
    "backtest_run": backtest_run,
    "cycle": cycle,
    "finetune": finetune,
    "backtest": backtest,
    "profile": profile,
}


def main(argv: list[str] | None = None) -> int:
    """Run one scenario and write its JSON."""
    p = argparse.ArgumentParser(prog="bench.forecaster_scenarios")
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--adapter-dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ctx", type=int, default=2048)
    p.add_argument("--horizon", type=int, default=60)
    p.add_argument("--resident", choices=["base", "base+adapter"], default="base")
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--rows", type=int, default=15)
    p.add_argument("--influx-url", default="")
    p.add_argument("--database", default="fc")
    p.add_argument("--at-ns", type=int, default=0)
    p.add_argument("--shape", choices=["default", "4cov"], default="default", help="predict, cycle: covariates")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    result = SCENARIOS[args.scenario](args)
    args.out.write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
