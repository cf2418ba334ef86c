"""`make bench-forecaster` / `python -m bench.forecaster_bench [--quick]`: Chronos-2 on CPU (2 threads) with
random weights of the real amazon/chronos-2 size (--quick: a tiny model, a smoke run only). Every scenario
runs in its own process (peak RSS per scenario); InfluxDB is a real influxd. Prints a table and appends a
dated section to docs/benchmarks.md; a missed latency/RSS target adds a torch.profiler table."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.collector_env import python_env
from bench.common import (
    REPO_ROOT,
    Row,
    finish_run,
    fmt,
    median,
    start_run,
)
from bench.finetune_run import DATABASE as FT_DATABASE
from bench.finetune_run import QUICK_OVERRIDES, finetune_days, run_default_finetune, telemetry_span, write_telemetry
from bench.finetune_run import SITE as FT_SITE
from bench.forecaster_core import NS, synthetic_series, system_lines
from bench.forecaster_model import REAL, SMALL, build_adapter, build_model
from bench.forecaster_rows import backtest_rows, backtest_run_rows, batching_rows, cycle_rows, finetune_rows
from bess_common.config import InfluxSettings
from bess_common.influx import InfluxClient
from deploy.localservices import InfluxServer
from forecaster.config import FinetuneSettings

STEP_S = 60
SITE = "bench"


@dataclass(frozen=True)
class Sizes:
    """Windows, steps and days per scenario."""

    model: dict[str, int]
    windows: int
    batch_windows: int
    cycles: int
    steps: int
    backtest_windows: int
    backtest_cutoffs: int


FULL = Sizes(REAL, 3, 6, 3, 4, 6, 4)
QUICK = Sizes(SMALL, 1, 2, 1, 2, 2, 2)


def _log(text: str) -> None:
    print(f"[bench-forecaster] {text}", file=sys.stderr, flush=True)


class Runner:
    """Runs scenarios as child processes and collects their JSON."""

    def __init__(self, work: Path, model_dir: Path, adapter_dir: Path) -> None:
        self.work, self.model_dir, self.adapter_dir = work, model_dir, adapter_dir
        self.errors: list[str] = []

    def __call__(self, scenario: str, timeout_s: float = 600, **kw: Any) -> dict[str, Any] | None:
        out = self.work / f"{scenario}-{len(list(self.work.glob('*.json')))}.json"
        cmd = [
            sys.executable,
            "-m",
            "bench.forecaster_scenarios",
            scenario,
            "--model-dir",
            str(self.model_dir),
            "--adapter-dir",
            str(self.adapter_dir),
            "--out",
            str(out),
        ]
        for key, value in kw.items():
            cmd += [f"--{key.replace('_', '-')}", str(value)]
        _log(f"scenario {scenario} {kw}")
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, env=python_env(), capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if proc.returncode != 0 or not out.exists():
            self.errors.append(f"{scenario} {kw}: exit {proc.returncode}: {proc.stderr[-1500:]}")
            _log(self.errors[-1])
            return None
        return dict(json.loads(out.read_text()))


def _write_history(client: InfluxClient, start_ns: int, n: int, step_s: int) -> float:
    """Write synthetic `system` rows; returns lines/s."""
    lines = system_lines(synthetic_series(start_ns, n, step_s), start_ns, step_s, SITE)
    began = time.monotonic()
    for i in range(0, len(lines), 5000):
        client.write(lines[i : i + 5000])
    return len(lines) / (time.monotonic() - began)


def read_rows(url: str, quick: bool) -> tuple[list[Row], float, int]:
    """InfluxDB read of the fine-tune's training set (train_days at 1-min buckets over raw 1 Hz telemetry),
    measured on that many days, not extrapolated. The telemetry (train + validation + gate days) stays in
    InfluxDB for the fine-tune run. (rows, read seconds, lines written)."""
    from forecaster.store import ForecastStore

    train_days = FinetuneSettings(**(QUICK_OVERRIDES if quick else {})).train_days
    start, end = telemetry_span(finetune_days(quick))
    _log(f"read benchmark: writing {(end - start) / NS / 86400:.2f} days of 1 Hz telemetry")
    written, write_lps = write_telemetry(url, start, end)
    client = InfluxClient(InfluxSettings(url=url, database=FT_DATABASE, timeout_s=600.0))
    store = ForecastStore(client, FT_SITE)
    keys = ["battery_power_w", "battery_voltage_v", "battery_soc_pct", "pv_power_w", "load_power_w"]
    buckets = int(train_days * 86400) // STEP_S
    read_from = end - 3600 * NS - buckets * STEP_S * NS
    reads = []
    for _ in range(2):
        began = time.monotonic()
        grid = store.read_grid(keys, read_from, STEP_S, buckets)
        reads.append(time.monotonic() - began)
    client.close()
    filled = sum(int(np.isfinite(v).sum()) for v in grid.values()) / (len(keys) * buckets)
    return (
        [
            Row(
                f"read: {train_days:g}-day training set, 1-min means of 1 Hz data",
                fmt(median(reads), 2, "s"),
                "",
                None,
                f"measured (median of 2 reads), 5 series x {buckets:,} buckets, {filled:.0%} filled; "
                f"{written:,} lines of 1 Hz telemetry written at {fmt(write_lps, 0)} lines/s",
            ),
        ],
        median(reads),
        written,
    )


PREDICT_SHAPES = {
    "4cov": "5 rows: target + 4 covariates (voltage, SoC, PV past; tod_sin known), the '4 covariates' shape",
    "default": "9 rows: the default intraday task, target + 4 measured + 4 time covariates",
}


def predict_rows(run: Runner, sizes: Sizes) -> tuple[list[Row], dict[tuple[int, int, str, str], dict[str, Any]]]:
    """Per-window latency and peak RSS over ctx x horizon x residency with 4 covariates (the issue's shape),
    and the default task's 9-row shape at horizon 60 with both models resident."""
    plan = [(ctx, h, res, "4cov") for ctx in (512, 2048) for h in (60, 96) for res in ("base", "base+adapter")]
    plan += [(512, 60, "base+adapter", "default"), (2048, 60, "base+adapter", "default")]
    rows, found = [], {}
    for ctx, horizon, resident, shape in plan:
        r = run("predict", ctx=ctx, horizon=horizon, resident=resident, windows=sizes.windows, shape=shape)
        if r is None:
            continue
        found[(ctx, horizon, resident, shape)] = r
        value = " / ".join(f"{m} {fmt(v, 2, 's')}" for m, v in r["per_window_s"].items())
        rows.append(
            Row(
                f"predict ctx {ctx}, H {horizon}, resident {resident}, {r['rows']} rows",
                value,
                "",
                None,
                f"per window (median of {sizes.windows}; {PREDICT_SHAPES[shape]}); peak RSS "
                f"{fmt(r['peak_rss_mb'], 0, 'MB')}, after load {fmt(r['rss_loaded_mb'], 0, 'MB')}",
            )
        )
    return rows, found


def profile_note(run: Runner, rows: list[Row]) -> list[str]:
    """torch.profiler tables when the cycle or RSS target is missed."""
    if not any(r.met is False for r in rows):
        return []
    r = run("profile", ctx=2048, horizon=60, rows=15)
    if r is None:
        return []
    return [
        f"Profile of one intraday run_models (base + fine-tuned + baselines, ctx 2048, H 60; torch.profiler, "
        f"top by self CPU):\n\n```\n{r['table'].rstrip()}\n```"
    ]


SCENARIO_NAMES = ("predict", "batching", "cycle", "read", "finetune", "backtest", "backtest_run", "finetune_run")


def _scenarios(runner: Runner, sizes: Sizes, url: str, at: int, only: set[str]) -> list[Row]:
    """Every selected scenario in order; a failed one is recorded and the rest still run."""
    want = (lambda name: name in only) if only else (lambda name: True)
    rows: list[Row] = []
    predict: dict[Any, dict[str, Any]] = {}
    if want("predict"):
        pred_rows, predict = predict_rows(runner, sizes)
        rows += pred_rows
    if want("batching"):
        rows += batching_rows(runner("batching", ctx=2048, horizon=60, windows=sizes.batch_windows))
    if want("cycle"):
        default = runner("cycle", influx_url=url, database="fc", at_ns=at, windows=sizes.cycles)
        four = runner("cycle", influx_url=url, database="fc", at_ns=at, windows=sizes.cycles, shape="4cov")
        rows += cycle_rows(default, four)
    read_28 = float("nan")
    written: int | None = None
    if want("read"):
        try:
            read, read_28, written = read_rows(url, quick=sizes.model is SMALL)
        except Exception as exc:  # keep the other scenarios' numbers
            read = [Row("read: FAILED", type(exc).__name__, "", None, str(exc)[:300])]
        rows += read
    if want("finetune"):
        rows += finetune_rows(runner("finetune", steps=sizes.steps), read_28, predict)
    if want("backtest"):
        rows += backtest_rows(runner("backtest", ctx=2048, horizon=60, windows=sizes.backtest_windows))
    if want("backtest_run"):
        r = runner("backtest_run", ctx=2048, horizon=60, windows=sizes.backtest_cutoffs, influx_url=url, database="bt")
        rows += backtest_run_rows(r)
    if want("finetune_run"):  # last: the longest (~30 min at full size)
        try:
            rows += run_default_finetune(
                url, runner.work, runner.model_dir, quick=sizes.model is SMALL, log=_log, written=written
            )
        except Exception as exc:  # keep the other scenarios' numbers
            rows.append(Row("fine-tune run: FAILED", type(exc).__name__, "", None, str(exc)[:300]))
    return rows


def run(sizes: Sizes, only: set[str] | None = None) -> tuple[list[Row], list[str]]:
    """Build the model, start influxd, run the scenarios (all, or `only`); the rows and notes."""
    with tempfile.TemporaryDirectory(prefix="bench-forecaster-") as tmp:
        work = Path(tmp)
        model_dir, adapter_dir = work / "model", work / "adapter"
        _log("building the random-weight model and adapter")
        params = build_model(model_dir, sizes.model)
        adapter = build_adapter(model_dir, adapter_dir)
        runner = Runner(work, model_dir, adapter_dir)
        influx = InfluxServer(work / "influxd")
        with influx:
            client = InfluxClient(InfluxSettings(url=influx.url, database="fc", timeout_s=60.0))
            client.create_database()
            at = time.time_ns() // (60 * NS) * (60 * NS)
            _write_history(client, at - 3 * 86400 * NS, 3 * 1440, STEP_S)
            client.close()
            rows = _scenarios(runner, sizes, influx.url, at, only or set())
            notes = profile_note(runner, rows)
        notes.insert(
            0,
            f"Model: random weights, {params:,} parameters; LoRA adapter {adapter:,} parameters "
            "(r 8, alpha 16, Chronos-2's default targets); torch threads 2; fp32.",
        )
        notes += [f"Scenario failed: {e}" for e in runner.errors]
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, append the section (unless --no-doc)."""
    parser = argparse.ArgumentParser(prog="bench.forecaster_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny model, one window each: a smoke run only")
    parser.add_argument("--no-doc", action="store_true", help="print only; do not append to docs/benchmarks.md")
    parser.add_argument("--only", default="", help="comma-separated scenarios to run (default: all)")
    parser.add_argument("--title-note", default="", help="appended to the section title, e.g. 'under load'")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    only = {x for x in args.only.split(",") if x}
    unknown = only - set(SCENARIO_NAMES)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIO_NAMES)}")
    title = "Forecaster" + (" (--quick smoke run, tiny model)" if args.quick else "")
    title += f" ({args.title_note})" if args.title_note else ""
    ctx = start_run(title)
    rows, notes = run(sizes, only)
    finish_run(ctx, rows, notes, write_doc=not args.no_doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
