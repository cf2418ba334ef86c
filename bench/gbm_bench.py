"""The site-trained gradient-boosting model's costs: training on 28 days of 1-minute data with the default
intraday task's covariates (the fine-tune's split: 28 training + 2 validation + 2 gate days) and predicting
one window. Data: the simulator's physics (bench/simsite.py), in memory (reading from InfluxDB is measured
by bench.forecaster_bench). Run on its own: `python -m bench.gbm_bench` (appends to docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np

from bench.common import Row, finish_run, fmt, start_run
from bench.simsite import minute_series
from forecaster.config import FinetuneSettings, ForecastTask
from forecaster.finetune import make_split
from forecaster.gbm import GbmParams, train_gbm
from forecaster.rolling import window_at
from forecaster.windows import NS

TARGETS = {"train_s": 120.0, "peak_rss_mb": 1024.0, "predict_s": 0.2}


def peak_rss_mb() -> float:
    """This process's peak RSS so far (ru_maxrss, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(train_days: float, threads: int) -> tuple[list[Row], list[str]]:
    """Measure training and prediction; rows and notes."""
    cfg = FinetuneSettings()
    days = int(train_days + cfg.validation_days + cfg.gate_days)
    series, start = minute_series(seed=3, first_day=20_400, days=days)
    end = start + len(series["battery_power_w"]) * 60 * NS
    split = make_split(end, 60, train_days, cfg.validation_days, cfg.gate_days)
    task = ForecastTask(name="intraday")
    rss_before = peak_rss_mb()
    params = GbmParams(threads=threads)
    cpu0, wall0 = time.process_time(), time.monotonic()
    model = train_gbm(series, start, task, split, params)
    train_s, train_cpu_s = time.monotonic() - wall0, time.process_time() - cpu0
    rss_train = peak_rss_mb()
    cutoffs = [split.gate_start_ns + k * 3600 * NS for k in range(40)]
    windows = [window_at(series, start, task, c) for c in cutoffs]
    model.predict(windows[0])  # first call: lazy set-up
    times = []
    for window in windows:
        t0 = time.perf_counter()
        model.predict(window)
        times.append(time.perf_counter() - t0)
    p50, p95 = float(np.percentile(times, 50)), float(np.percentile(times, 95))
    rows = [
        Row(
            "gbm: train, 28 d of 1-min data",
            fmt(train_s, 1, "s"),
            "< 120 s",
            train_s < TARGETS["train_s"],
            f"{train_cpu_s:.1f} CPU-s; {model.meta['rows']['train']} training rows, {len(model.names)} features, "
            f"rounds {model.meta['rounds']} for levels {list(model.levels)}; {threads} LightGBM thread(s)",
        ),
        Row(
            "gbm: peak RSS (process)",
            fmt(rss_train, 0, "MB"),
            "< 1024 MB",
            rss_train < TARGETS["peak_rss_mb"],
            f"{rss_before:.0f} MB before training (Python, numpy, 32 days of series)",
        ),
        Row(
            "gbm: predict one window (p50 / p95 of 40)",
            f"{p50 * 1000:.1f} / {p95 * 1000:.1f} ms",
            "< 0.2 s",
            p95 < TARGETS["predict_s"],
            "features from a 2048-step window + 3 boosters",
        ),
    ]
    return rows, []


def main(argv: list[str] | None = None) -> int:
    """Run, print, append the section (unless --no-doc)."""
    parser = argparse.ArgumentParser(prog="bench.gbm_bench", description=__doc__)
    parser.add_argument("--no-doc", action="store_true", help="print only; do not append to docs/benchmarks.md")
    parser.add_argument("--train-days", type=float, default=FinetuneSettings().train_days)
    parser.add_argument("--threads", type=int, default=GbmParams().threads)
    parser.add_argument("--title-note", default="", help="appended to the section title, e.g. 'under load'")
    args = parser.parse_args(argv)
    title = "Gradient-boosting model" + (f" ({args.title_note})" if args.title_note else "")
    ctx = start_run(title)
    rows, notes = run(args.train_days, args.threads)
    finish_run(ctx, rows, notes, write_doc=not args.no_doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
