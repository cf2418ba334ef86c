"""`bess-forecaster score`: score stored forecasts against actuals, per regime and lead bucket."""

from __future__ import annotations

import argparse

from bess_common.errors import FatalError, RejectedError, RetryableError
from forecaster.commands.common import add_config, load_with_time, runtime

HELP = "Score forecasts whose horizon ended in the last score_period and write forecast_score"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments."""
    add_config(parser)
    parser.add_argument("--end", help="ISO-8601 UTC end of the scoring period (default: now, hour-aligned)")
    parser.add_argument("--run", default="live", help="Which `run` of forecasts to score (default live)")


def main(args: argparse.Namespace) -> int:
    """Exit 0 on success, 1 when InfluxDB failed."""
    loaded = load_with_time(args, "end")
    if loaded is None:
        return 2
    settings, end_ns = loaded
    rt = runtime(settings, with_models=False)
    if isinstance(rt, int):
        return rt
    svc = rt.service()
    for task in settings.forecaster.tasks:
        try:
            written = svc.score(task, end_ns=end_ns, run=args.run)
        except (RetryableError, RejectedError, FatalError) as exc:
            print(f"{task.name}: {exc}")
            return 1
        print(f"{task.name}: {written} score points written")
    return 0
