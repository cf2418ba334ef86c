"""`bess-forecaster report --run RUN --out DIR`: the backtest report (HTML + Markdown + PNG plots)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from forecaster.report import RunFolderError, build_report
from forecaster.report.tables import DEFAULT_SIGNIFICANCE, Significance

HELP = "Render a backtest run folder into a self-contained HTML report, a Markdown version and PNG plots."


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the report command."""
    parser.add_argument("--run", required=True, type=Path, help="backtest run folder (forecasts.csv + manifest.json)")
    parser.add_argument("--out", required=True, type=Path, help="folder to write report.html, report.md and PNGs into")
    parser.add_argument("--seed", type=int, default=0, help="seed of the window bootstrap (default 0)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of windows (default 1000)")
    parser.add_argument(
        "--negligible-pct",
        type=float,
        default=DEFAULT_SIGNIFICANCE.rel * 100,
        help="a change beyond noise but under this relative size is 'negligible' (default %(default)g %%)",
    )
    parser.add_argument(
        "--negligible-w",
        type=float,
        default=DEFAULT_SIGNIFICANCE.floor_w,
        help="... or under this absolute size in W (MAE; default %(default)g W)",
    )


def _progress(line: str) -> None:
    print(f"report: {line}", file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    """Build the report; exit 2 when the run folder lacks files or columns, 1 on any other failure."""
    if args.resamples < 1:
        print("report: --resamples must be at least 1", file=sys.stderr)
        return 2
    if args.negligible_pct < 0 or args.negligible_w < 0:
        print("report: --negligible-pct and --negligible-w must be 0 or more", file=sys.stderr)
        return 2
    rule = Significance(rel=args.negligible_pct / 100, floor_w=args.negligible_w)
    try:
        paths = build_report(
            args.run, args.out, seed=args.seed, resamples=args.resamples, progress=_progress, significance=rule
        )
    except RunFolderError as exc:
        print(f"report: cannot read run folder {args.run}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"report: failed: {exc}", file=sys.stderr)
        return 1
    print(f"html: {paths.html}")
    print(f"markdown: {paths.markdown}")
    for image in paths.images:
        print(f"image: {image}")
    for table in paths.csvs:
        print(f"csv: {table}")
    return 0
