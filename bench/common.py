"""Shared parts of the benchmarks: the machine, process CPU/RSS, tables, targets, the docs/benchmarks.md section.

Pure helpers (percentile, table, verdict, section text) are unit-tested; the rest reads /proc and psutil.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import resource
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = REPO_ROOT / "docs" / "benchmarks.md"
DOC_HEADER = """# Benchmarks

How fast and how cheap the collector and the forecaster are. Targets live here, never in timed tests.

Reproduce (each appends a dated section below: machine, load average, exact command, numbers, targets):

- `make bench-collector` (= `python -m bench.collector_bench`, ~25 min): the collector against real influxd,
  mosquitto and the simulator (16 cells, Modbus + MQTT).
- `make bench-forecaster` (= `python -m bench.forecaster_bench`, ~10 min): Chronos-2 of the real size with
  random weights, 2 torch threads, real influxd.
- `python -m bench.gbm_bench` (~1 min): the site-trained gradient-boosting model, trained on 28 days of simulated
  1-minute data with the intraday task's covariates, and its prediction time per window.
- `python -m bench.collector_bench --quick` / `python -m bench.forecaster_bench --quick`: 1-3 min smoke runs
  (tiny model, short phases); their numbers are not representative.

Options: `--no-doc` (print only), `--title-note TEXT`; the collector also takes `--phases steady,drain,ceiling,latency`,
the forecaster `--only predict,batching,cycle,read,finetune,backtest,backtest_run`.
Run them on a quiet machine (note the load average); ratios are always taken within one run.

What is measured:

- Collector, steady state: `collector run` as its own process for 10 min at 1 Hz; CPU seconds per wall second
  of that process (/proc), its peak RSS (VmHWM), lines (= InfluxDB points) and field values per second, and the
  1 Hz grid completeness: for every series and field seen in the window, `count()` of seconds present / seconds.
- Collector, drain: 1 h of simulated 16-cell history (one buffer transaction per second, as the ticker does)
  is drained by the real collector (simulator live) and, separately, by DiskBuffer + Writer in-process; both
  compared with posting the same lines straight to InfluxDB in batches of 5000, before and after (ratio).
- Collector, ingest ceiling: the simulator with more and more cells through the whole pipeline (sources ->
  grid -> buffer -> InfluxDB) until a tick is missed, the buffer grows or a cell misses seconds.
- Collector, latency: rows of `system` are polled every 50 ms; each row's values are matched to the one
  simulator second that produced them (ambiguous rows are skipped); latency = first seen - that second.
- Forecaster: every scenario in its own process (peak RSS = ru_maxrss of that process). Windows carry the
  intraday task's shape: target + 4 measured covariates + 4 time features (9 rows).
"""


@dataclass(frozen=True)
class Row:
    """One measured number, its target (empty when none) and whether the target is met (None = no target)."""

    name: str
    value: str
    target: str = ""
    met: bool | None = None
    note: str = ""


def verdict(met: bool | None) -> str:
    """'met' / 'NOT met' / '' for a row."""
    if met is None:
        return ""
    return "met" if met else "NOT met"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; NaN for no values."""
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    """The 50th percentile."""
    return percentile(values, 50.0)


def markdown_table(rows: Sequence[Row]) -> str:
    """Rows as a GitHub markdown table: measure | value | target | verdict | note."""
    out = ["| measure | value | target | verdict | note |", "|---|---|---|---|---|"]
    for r in rows:
        cells = [r.name, r.value, r.target, verdict(r.met), r.note]
        out.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(out)


def console_table(rows: Sequence[Row]) -> str:
    """Rows as an aligned plain-text table for the terminal."""
    header = ("measure", "value", "target", "verdict")
    body = [(r.name, r.value, r.target, verdict(r.met)) for r in rows]
    widths = [max(len(str(x[i])) for x in [header, *body]) for i in range(4)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def load_average() -> str:
    """The 1/5/15-minute load averages as text."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return math.nan


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_description() -> str:
    """CPU model, cores, RAM, kernel, Python and torch versions, on one line."""
    return (
        f"{_cpu_model()}, {os.cpu_count()} logical cores, {_mem_total_gib():.1f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}, torch {_version('torch')}, "
        f"InfluxDB {influxd_version()}"
    )


def influxd_version() -> str:
    """`influxd version` (first line) or 'unknown'."""
    import shutil
    import subprocess

    exe = shutil.which("influxd") or "/usr/bin/influxd"
    try:
        out = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].replace("InfluxDB ", "") if text else "unknown"


def command_line() -> str:
    """How this benchmark was started, as a shell line (make sets BENCH_COMMAND to its own target)."""
    return os.environ.get("BENCH_COMMAND") or " ".join(
        shlex.quote(a) for a in [Path(sys.executable).name, "-m", *_module_argv()]
    )


def _module_argv() -> list[str]:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = spec.name if spec is not None else sys.argv[0]
    return [name, *sys.argv[1:]]


def utc_now_text() -> str:
    """Now, UTC, to the minute."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def section(
    title: str,
    *,
    date: str,
    machine: str,
    command: str,
    load_start: str,
    load_end: str,
    rows: Sequence[Row],
    notes: Sequence[str] = (),
) -> str:
    """One dated markdown section: context, the table, then free-text notes (profiles, explanations)."""
    parts = [
        f"## {title}: {date}",
        "",
        f"- Machine: {machine}",
        f"- Command: `{command}`",
        f"- Load average (1/5/15 min) at start: {load_start}; at end: {load_end}",
        "",
        markdown_table(rows),
    ]
    for note in notes:
        parts += ["", note]
    return "\n".join(parts) + "\n"


@dataclass(frozen=True)
class RunContext:
    """What a benchmark section records about the run besides its rows."""

    title: str
    date: str
    machine: str
    load_start: str


def start_run(title: str) -> RunContext:
    """Record the machine, the date and the load before a benchmark starts."""
    return RunContext(title, utc_now_text(), machine_description(), load_average())


def finish_run(ctx: RunContext, rows: Sequence[Row], notes: Sequence[str], *, write_doc: bool) -> None:
    """Print the table (and each row's note); append the dated section to docs/benchmarks.md."""
    load_end = load_average()
    print(console_table(rows))
    for r in rows:
        if r.note:
            print(f"  {r.name}: {r.note}")
    if write_doc:
        append_section(
            section(
                ctx.title,
                date=ctx.date,
                machine=ctx.machine,
                command=command_line(),
                load_start=ctx.load_start,
                load_end=load_end,
                rows=rows,
                notes=notes,
            )
        )


def append_section(text: str, path: Path = DOC_PATH) -> None:
    """Append a section to docs/benchmarks.md (created with its header when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(DOC_HEADER)
    with path.open("a") as fh:
        fh.write("\n" + text)


# -- processes --------------------------------------------------------------------------------------------
def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (its own threads, not children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_mb(pid: int, key: str = "VmRSS") -> float:
    """VmRSS (now) or VmHWM (peak so far) of a process, in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024 / 1e6
    return math.nan


def self_peak_rss_mb() -> float:
    """Peak RSS of this process so far, in MB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


class CpuMeter:
    """CPU seconds per wall second of one process between start() and stop()."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._cpu0 = 0.0
        self._wall0 = 0.0
        self.cpu_s = 0.0
        self.wall_s = 0.0

    def start(self) -> CpuMeter:
        """Mark the start."""
        self._cpu0, self._wall0 = proc_cpu_s(self.pid), time.monotonic()
        return self

    def stop(self) -> float:
        """Mark the end; return CPU seconds per wall second."""
        self.cpu_s = proc_cpu_s(self.pid) - self._cpu0
        self.wall_s = time.monotonic() - self._wall0
        return self.cpu_s / self.wall_s if self.wall_s > 0 else math.nan


def fmt(value: float, digits: int = 1, unit: str = "") -> str:
    """A number with a fixed number of decimals (and a unit), or 'n/a' for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}"
