"""`make bench-collector` / `python -m bench.collector_bench [--quick]`: the collector against real influxd,
mosquitto and the simulator at full size. Prints a table and appends a dated section to docs/benchmarks.md.

Phases, one after the other (never in parallel): steady state at 1 Hz, backlog drain after an outage vs the
raw InfluxDB ingest of the same lines (ratio in one run), the ingest ceiling (more cells until it falls
behind), end-to-end latency. A missed CPU target, and the first ceiling step that fell behind, trigger a
cProfile of the collector's threads.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from bench import collector_phases as ph
from bench.collector_core import Step, ceiling
from bench.collector_env import Services, python_env
from bench.common import (
    REPO_ROOT,
    Row,
    console_table,
    finish_run,
    fmt,
    median,
    start_run,
)

CPU_TARGET = 0.02  # of one core
RSS_TARGET_MB = 150.0
DRAIN_RATIO_TARGET = 0.8
SIM_BOUND = 0.9  # simulator CPU (of one core) from which a step may be limited by the simulator, not the collector


@dataclass(frozen=True)
class Sizes:
    """How long / how big each phase is."""

    steady_s: int
    warmup_s: float
    outage_s: int
    ceiling_cells: tuple[int, ...]
    ceiling_s: int
    latency_s: int
    profile_s: int


# the ceiling steps up until one falls behind; 60 s per step (plus ~30 s of start, warm-up and checks)
FULL = Sizes(600, 20.0, 3600, (2048, 4096, 8192, 16384, 32768, 65536), 60, 60, 60)
QUICK = Sizes(20, 3.0, 120, (16, 128), 8, 10, 10)


def _log(text: str) -> None:
    print(f"[bench-collector] {text}", file=sys.stderr, flush=True)


def steady_rows(r: ph.SteadyResult) -> list[Row]:
    """Table rows of the steady-state phase."""
    worst = ", ".join(f"{k} {v:.1%}" for k, v in r.worst) or "none"
    return [
        Row(
            "steady: CPU of one core",
            f"{r.cpu_per_wall:.2%}",
            "< 2 %",
            r.cpu_per_wall < CPU_TARGET,
            f"{r.seconds} s at 1 Hz, 16 cells, Modbus + MQTT",
        ),
        Row(
            "steady: peak RSS",
            fmt(r.peak_rss_mb, 1, "MB"),
            "< 150 MB",
            r.peak_rss_mb < RSS_TARGET_MB,
            f"VmHWM; RSS at the end {fmt(r.rss_end_mb, 1, 'MB')}",
        ),
        Row(
            "steady: points (lines) per second",
            fmt(r.lines_per_s, 1),
            "",
            None,
            f"{fmt(r.values_per_s, 0)} field values/s",
        ),
        Row(
            "steady: 1 Hz grid completeness",
            f"{r.completeness:.3%}",
            "100 %",
            r.completeness >= 1.0,
            f"{r.complete_fields}/{r.fields} series fields complete; least complete: {worst}; "
            f"ticks missed {r.ticks_missed:.0f}",
        ),
    ]


def drain_rows(r: ph.DrainResult) -> list[Row]:
    """Table rows of the drain phase: medians over the interleaved rounds, every round in the notes."""
    ratio, ratio_in = median(r.collector_ratios), median(r.inprocess_ratios)
    raw = " / ".join(fmt(x, 0) for x in r.raw_lines_per_s)
    rounds = len(r.collector_ratios)
    return [
        Row(
            "drain: raw InfluxDB ingest (lines/s)",
            fmt(median(r.raw_lines_per_s), 0),
            "",
            None,
            f"median; same {r.backlog_lines} lines ({r.outage_s} s outage), batches of 5000, posted between the "
            f"drains: {raw}",
        ),
        Row(
            "drain: collector buffer -> InfluxDB (lines/s)",
            fmt(median(r.collector_lines_per_s), 0),
            "",
            None,
            f"median of {rounds}; real collector process, simulator live; backlog gone in "
            f"{fmt(median(r.collector_drain_s), 2, 's')}",
        ),
        Row(
            "drain: ratio collector / raw",
            f"{ratio:.2f}",
            ">= 0.8",
            ratio >= DRAIN_RATIO_TARGET,
            f"median of {rounds} rounds, each against the raw ingests just before and after it: "
            + ", ".join(f"{x:.2f}" for x in r.collector_ratios),
        ),
        Row(
            "drain: ratio in-process Writer / raw",
            f"{ratio_in:.2f}",
            "",
            None,
            "DiskBuffer + Writer alone, per round: " + ", ".join(f"{x:.2f}" for x in r.inprocess_ratios),
        ),
    ]


def ceiling_rows(steps: list[Step]) -> list[Row]:
    """Table rows of the ceiling phase: one per step, then the ceiling."""
    rows = [
        Row(
            f"ceiling: {s.cells} cells",
            f"{fmt(s.lines_per_s, 0)} lines/s",
            "",
            None,
            f"{fmt(s.values_per_s, 0)} cell values/s; collector {s.collector_cpu:.1%} / simulator "
            f"{s.simulator_cpu:.1%} of a core; ticks missed {s.ticks_missed}; buffer {s.depth_start}->"
            f"{s.depth_end}; cells seen {s.cells_seen}, min completeness {s.cell_completeness:.1%}; "
            f"{'kept up' if s.kept_up else 'FELL BEHIND (' + '; '.join(s.behind) + ')'}"
            f"{'; the simulator used a whole core: it may be the limit' if s.simulator_cpu >= SIM_BOUND else ''}",
        )
        for s in steps
    ]
    best = ceiling(steps)
    text = f"{fmt(best.lines_per_s, 0)} lines/s ({best.cells} cells)" if best else "none kept up"
    first_behind = next((s for s in steps if not s.kept_up), None)
    if first_behind is not None:
        note = (
            f"first step that fell behind: {first_behind.cells} cells ({fmt(first_behind.lines_per_s, 0)} lines/s "
            f"written, collector {first_behind.collector_cpu:.1%} of a core): {'; '.join(first_behind.behind)}"
        )
    else:
        note = "the largest step tried still kept up: the ceiling is above it"
    rows.append(Row("ceiling: highest sustained rate", text, "", None, note))
    return rows


def latency_rows(r: ph.LatencyResult) -> list[Row]:
    """Table rows of the latency phase."""
    note = f"{len(r.samples)} rows matched to the simulator second that produced them, {r.unmatched} ambiguous"
    return [
        Row("latency p50: simulator change -> queryable", fmt(r.p50, 2, "s"), "", None, note),
        Row(
            "latency p95",
            fmt(r.p95, 2, "s"),
            "",
            None,
            f"of which: row stamped {fmt(median(r.stamp_lag_s), 2, 's')} after the change (median; the 1 Hz tick), "
            "the rest waits for the writer, which flushes every 1 s (flush_interval_s default)",
        ),
    ]


def profile_note(seconds: int, work: Path, cells: int = 16) -> str:
    """Run the collector in-process under per-thread cProfile (own subprocess); its top entries as markdown."""
    cmd = [sys.executable, "-m", "bench.collector_profile", "--seconds", str(seconds), "--workdir", str(work)]
    out = subprocess.run(
        [*cmd, "--cells", str(cells)],
        cwd=REPO_ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=seconds + 240,
        check=False,
    )
    body = out.stdout.strip() or out.stderr[-3000:]
    return (
        f"Profile of the collector ({cells} cells, {seconds} s, all threads, cProfile, top by own time):"
        f"\n\n```\n{body}\n```"
    )


def _ceiling(svc: Services, work: Path, sizes: Sizes, seed: int) -> tuple[list[Row], list[str]]:
    steps: list[Step] = []
    notes: list[str] = []
    for cells in sizes.ceiling_cells:
        _log(f"ceiling: {cells} cells")
        try:
            step = ph.ceiling_step(svc, work, cells=cells, seconds=sizes.ceiling_s, warmup_s=sizes.warmup_s, seed=seed)
        except TimeoutError as exc:
            notes.append(
                f"Ceiling: the simulator could not start with {cells} cells ({exc}), so the simulator, not the "
                "collector, limits the steps beyond the last one shown."
            )
            break
        steps.append(step)
        _log(console_table(ceiling_rows([step])[:1]))
        if not step.kept_up:
            _log(f"ceiling: profiling the collector at {cells} cells (what bounds it)")
            notes.append(profile_note(30, work, cells=cells))
            break
    return ceiling_rows(steps), notes


def _phase(phase: str, svc: Services, work: Path, sizes: Sizes, seed: int) -> tuple[list[Row], list[str]]:
    """One phase's rows and notes."""
    if phase == "steady":
        return steady_rows(
            ph.steady(svc, work, seconds=sizes.steady_s, warmup_s=sizes.warmup_s, seed=seed, log=_log)
        ), []
    if phase == "drain":
        result = ph.drain(svc, work, outage_s=sizes.outage_s, seed=seed, log=_log)
        notes = []
        if median(result.collector_ratios) < DRAIN_RATIO_TARGET:
            _log("drain ratio target missed: profiling the in-process Writer drain")
            notes.append(
                "Profile of the drain (in-process DiskBuffer + Writer on the same backlog, cProfile, by own time "
                f"then cumulative):\n\n```\n{ph.profile_drain(svc, work)}\n```"
            )
        return drain_rows(result), notes
    if phase == "ceiling":
        return _ceiling(svc, work, sizes, seed)
    return latency_rows(
        ph.latency(svc, work, seconds=sizes.latency_s, warmup_s=sizes.warmup_s, seed=seed, poll_s=0.05)
    ), []


def run(sizes: Sizes, phases: set[str], seed: int) -> tuple[list[Row], list[str]]:
    """Run the selected phases; the table rows and the notes."""
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
        work = Path(tmp)
        with Services(work) as svc:
            for phase in ("steady", "drain", "ceiling", "latency"):
                if phase not in phases:
                    continue
                _log(f"phase: {phase}")
                try:
                    got, extra = _phase(phase, svc, work, sizes, seed)
                except Exception as exc:  # keep the other phases' numbers
                    got, extra = [Row(f"{phase}: FAILED", type(exc).__name__, "", None, str(exc)[:300])], []
                _log("\n" + console_table(got))
                rows += got
                notes += extra
        if any(r.met is False and "CPU" in r.name for r in rows):
            _log("CPU target missed: profiling")
            notes.append(profile_note(sizes.profile_s, work))
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, append the section (unless --no-doc)."""
    parser = argparse.ArgumentParser(prog="bench.collector_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke sizes (numbers not representative)")
    parser.add_argument("--phases", default="steady,drain,ceiling,latency", help="comma-separated subset")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-doc", action="store_true", help="print only; do not append to docs/benchmarks.md")
    parser.add_argument("--title-note", default="", help="appended to the section title, e.g. 'under load'")
    parser.add_argument("--ceiling-cells", default="", help="comma-separated cell counts of the ceiling steps")
    parser.add_argument("--ceiling-s", type=int, default=0, help="seconds measured per ceiling step")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.ceiling_cells:
        sizes = replace(sizes, ceiling_cells=tuple(int(c) for c in args.ceiling_cells.split(",")))
    if args.ceiling_s > 0:
        sizes = replace(sizes, ceiling_s=args.ceiling_s)
    title = "Collector" + (" (--quick smoke run)" if args.quick else "")
    title += f" ({args.title_note})" if args.title_note else ""
    ctx = start_run(title)
    rows, notes = run(sizes, set(args.phases.split(",")), args.seed)
    finish_run(ctx, rows, notes, write_doc=not args.no_doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
