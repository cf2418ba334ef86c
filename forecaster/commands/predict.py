"""`bess-forecaster predict`: one forecast run for every task (or one) at now or a given cut-off."""

from __future__ import annotations

import argparse
import sys

from bess_common.errors import FatalError, RejectedError, RetryableError
from forecaster.commands.common import add_config, context_notes, load_with_time, runtime
from forecaster.finetune import iso

HELP = "Forecast once with every model (base, finetuned, persistence, seasonal_naive) and write to InfluxDB"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments."""
    add_config(parser)
    parser.add_argument("--task", action="append", help="Task name (repeatable); default: all tasks")
    parser.add_argument("--at", help="ISO-8601 UTC time to forecast from (default: now); aligned to the cadence")
    parser.add_argument("--run", default="live", help="The `run` tag (default live)")


def main(args: argparse.Namespace) -> int:
    """Exit 0 when every task was forecast; 1 on a runtime failure or when the base model is unavailable."""
    loaded = load_with_time(args, "at")
    if loaded is None:
        return 2
    settings, at_ns = loaded
    names = {t.name for t in settings.forecaster.tasks}
    unknown = set(args.task or []) - names
    if unknown:
        print(f"unknown task(s) {sorted(unknown)}; configured: {sorted(names)}")
        return 2
    rt = runtime(settings)
    if isinstance(rt, int):
        return rt
    for note in context_notes(settings, rt.models):
        print(note, file=sys.stderr)
    svc = rt.service()
    status = 0
    for task in settings.forecaster.tasks:
        if args.task and task.name not in args.task:
            continue
        try:
            result = svc.forecast(task, at_ns=at_ns, run=args.run)
        except (RetryableError, RejectedError, FatalError) as exc:
            print(f"{task.name}: {exc}")
            status = 1
            continue
        if result.skipped:
            print(f"{task.name}: skipped ({result.skipped})")
            status = 1
        else:
            fell = ", ".join(sorted(result.failures or {})) or "none"
            print(f"{task.name}: cut-off {iso(result.cutoff_ns)}, {result.written} points written, fallbacks: {fell}")
    if rt.models is None:
        return 1  # runtime() printed the one-line reason
    return status
