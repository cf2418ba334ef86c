"""The default scheduled fine-tune, run for real (not extrapolated): `bess-forecaster finetune --now`, the
command an operator runs and the same `run_finetune` the scheduler's weekly job calls, with every
[forecaster.finetune] default (LoRA, 200 steps, context 512, 28 + 2 + 2 days, 24 gate windows) on 32 days of
1 Hz telemetry in a real influxd and a random-weight Chronos-2 of the real size.

The wall time is split with the command's own JSON log (finetune_started, finetune_eval, finetune_finished);
peak RSS is the process's VmHWM from /proc. Driven by bench.forecaster_bench (scenario `finetune_run`)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.collector_env import python_env
from bench.common import REPO_ROOT, Row, fmt, proc_rss_mb
from bench.forecaster_core import DAY_S, NS, synthetic_series, system_lines
from bess_common.config import InfluxSettings
from bess_common.influx import InfluxClient
from forecaster.config import FinetuneSettings

SITE = "bench"
DATABASE = "ftrun"
# --quick: the same command and code path on a tiny model with a day of data and a few steps
QUICK_OVERRIDES = {
    "train_days": 1.0,
    "validation_days": 0.25,
    "gate_days": 0.25,
    "gate_windows": 2,
    "num_steps": 4,
    "eval_steps": 2,
}


@dataclass
class RunResult:
    """What one fine-tune command did: exit code, wall time, peak RSS and its timed log events."""

    rc: int
    wall_s: float
    peak_rss_mb: float
    events: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)  # (event, s since start, fields)
    output_tail: str = ""

    def first(self, event: str) -> float | None:
        """Seconds from the command's start to the first `event` in its log."""
        return next((t for e, t, _ in self.events if e == event), None)

    def last(self, event: str) -> float | None:
        """Seconds from the command's start to the last `event` in its log."""
        return next((t for e, t, _ in reversed(self.events) if e == event), None)


def telemetry_span(days: float) -> tuple[int, int]:
    """(start, end) ns of `days` of telemetry ending now, plus an hour either side: a fine-tune started a
    few minutes after the write still finds data up to its own "now"."""
    now_ns = time.time_ns() // (60 * NS) * (60 * NS)
    return now_ns - int(days * DAY_S) * NS - 3600 * NS, now_ns + 3600 * NS


def write_telemetry(url: str, start_ns: int, end_ns: int) -> tuple[int, float]:
    """1 Hz `system` rows from start to end, written a day at a time; (lines, lines/s)."""
    client = InfluxClient(InfluxSettings(url=url, database=DATABASE, timeout_s=120.0))
    client.create_database()
    total_s = (end_ns - start_ns) // NS
    written, began = 0, time.monotonic()
    try:
        for offset in range(0, total_s, DAY_S):
            n = min(DAY_S, total_s - offset)
            chunk_ns = start_ns + offset * NS
            lines = system_lines(synthetic_series(chunk_ns, n, 1, seed=offset // DAY_S), chunk_ns, 1, SITE)
            for i in range(0, len(lines), 5000):
                client.write(lines[i : i + 5000])
            written += len(lines)
    finally:
        client.close()
    return written, written / (time.monotonic() - began)


def finetune_days(quick: bool) -> float:
    """Days one fine-tune reads: train + validation + gate."""
    cfg = FinetuneSettings(**(QUICK_OVERRIDES if quick else {}))
    return cfg.train_days + cfg.validation_days + cfg.gate_days


def write_config(path: Path, url: str, model_dir: Path, registry_dir: Path, overrides: dict[str, Any]) -> None:
    """A config file with the production defaults except where the data and the model live."""
    finetune = "".join(f"{key} = {value!r}\n" for key, value in overrides.items())
    path.write_text(
        f'site = "{SITE}"\n\n[influx]\nurl = "{url}"\ndatabase = "{DATABASE}"\ntimeout_s = 300.0\n\n'
        f'[forecaster]\nbase_model = "{model_dir}"\nregistry_dir = "{registry_dir}"\n\n'
        f"[forecaster.finetune]\n{finetune}\n"
        '[logging]\nformat = "json"\n'
    )
    path.chmod(0o600)


def parse_events(output: str, started_at: float) -> list[tuple[str, float, dict[str, Any]]]:
    """(event, seconds since `started_at` (epoch s), fields) for every JSON log line of the command."""
    events = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
            ts = datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError):
            continue
        events.append((str(entry.get("event", "")), ts - started_at, entry))
    return events


def run_command(config: Path, timeout_s: float, log: Any) -> RunResult:
    """Run `python -m forecaster finetune --now --config CONFIG`; poll its VmHWM; time its log events."""
    cmd = [sys.executable, "-m", "forecaster", "finetune", "--now", "--config", str(config)]
    started_at, began = time.time(), time.monotonic()
    out_path = config.with_suffix(".log")
    peak = 0.0
    with out_path.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=python_env(), stdout=out, stderr=subprocess.STDOUT)
        next_note = began + 60
        while proc.poll() is None:
            if time.monotonic() - began > timeout_s:
                proc.kill()
                break
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
                peak = max(peak, proc_rss_mb(proc.pid, "VmHWM"))
            if time.monotonic() >= next_note:
                next_note += 60
                log(f"fine-tune running: {time.monotonic() - began:.0f} s, peak RSS {peak:.0f} MB")
            time.sleep(0.5)
        rc = proc.wait()
    wall = time.monotonic() - began
    output = out_path.read_text()
    return RunResult(rc, wall, peak, parse_events(output, started_at), output[-1500:])


def result_rows(r: RunResult, *, telemetry_lines: int, days: float, quick: bool) -> list[Row]:
    """The wall time, its parts and the peak RSS, as table rows."""
    cfg = FinetuneSettings(**(QUICK_OVERRIDES if quick else {}))
    name = f"fine-tune: default scheduled run ({cfg.num_steps} steps), wall time"
    if r.rc != 0:
        return [Row(name + ": FAILED", f"exit {r.rc}", "", None, r.output_tail.replace("\n", " ")[-300:])]
    started = r.first("finetune_started") or 0.0
    evals = [t for e, t, _ in r.events if e == "finetune_eval"]
    trained = evals[-1] if evals else started
    finished = r.last("finetune_finished") or r.wall_s
    verdict = next((f for e, _, f in r.events if e == "finetune_finished"), {})
    settings_text = "the --quick overrides" if quick else "every [forecaster.finetune] default"
    parts = (
        f"RUN, not extrapolated: `bess-forecaster finetune --now` on {days:g} days of 1 Hz telemetry "
        f"({telemetry_lines:,} lines) with {settings_text};"
        f" start -> data read and model "
        f"loaded {fmt(started, 0, 's')}; training {cfg.num_steps} steps with {len(evals)} evaluations "
        f"{fmt(trained - started, 0, 's')}; gate back-test ({cfg.gate_windows} cut-offs, candidate and "
        f"incumbent) and registration {fmt(finished - trained, 0, 's')}; promoted: {verdict.get('promoted')}"
    )
    return [
        Row(name, fmt(r.wall_s / 60, 1, "min"), "", None, parts),
        Row(
            "fine-tune: default scheduled run, peak RSS",
            fmt(r.peak_rss_mb, 0, "MB"),
            "",
            None,
            "VmHWM of the command (model, training, gate back-test)",
        ),
    ]


def run_default_finetune(
    url: str, work: Path, model_dir: Path, *, quick: bool, log: Any, written: int | None, timeout_s: float = 3 * 3600
) -> list[Row]:
    """Run the command on the telemetry in DATABASE (written here unless `written` says how many lines the read
    benchmark already put there) and return its table rows."""
    overrides = QUICK_OVERRIDES if quick else {}
    days = finetune_days(quick)
    if written is None:
        log(f"fine-tune run: writing {days:g} days of 1 Hz telemetry")
        written, lps = write_telemetry(url, *telemetry_span(days))
        log(f"fine-tune run: {written:,} lines at {lps:,.0f} lines/s")
    log("fine-tune run: running `bess-forecaster finetune --now`")
    config = work / "finetune-run.toml"
    write_config(config, url, model_dir, work / "finetune-registry", overrides)
    result = run_command(config, timeout_s, log)
    return result_rows(result, telemetry_lines=written, days=days, quick=quick)
