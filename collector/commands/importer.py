"""`bess-collector import`: land recorded history (Home Assistant, VRM, generic CSV, Pylontech BMS logs).

    bess-collector import --config FILE --format ha|vrm|generic|pylontech-bms [--mapping M.toml]
        [--map SOURCE=MEASUREMENT.FIELD[*SCALE][+OFFSET] ...] [--site S] [--buffer-dir D]
        [--time-column C] [--time-format F] [--tz ZONE] FILE...

Exit 0 when everything landed (bad rows are reported, not fatal), 2 on a bad config / mapping / usage
(also when the files yielded not one sample, e.g. a header the mapping does not match, or empty files),
1 when InfluxDB did not take the data before the stall deadline (the rest stays in the buffer directory and
a rerun, which re-imports idempotently, finishes it), 3 when the import finished but InfluxDB rejected
lines (set aside as dead letters in the import's buffer directory; the summary prints the
`bess-collector dead-letters` command that finds them) or a file contributed nothing, 130 when interrupted
(Ctrl-C: one line, what was read stays in the buffer directory for the rerun). See docs/import.md.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from bess_common.errors import ConfigError
from bess_common.influx import InfluxClient
from bess_common.logs import get_logger, setup_logging
from collector.buffer import DiskBuffer
from collector.config import Settings, load_settings
from collector.deadletters import DeadLetters
from collector.importers.formats import FORMATS
from collector.importers.landing import ImportStalled, Lander, LandingLimits
from collector.importers.mapping import Mapping, load_mapping
from collector.importers.report import ImportReport, verdict
from collector.importers.runner import ImportProgress, run_import, tty_or_none
from collector.importers.sources import ImportSpec
from collector.importers.timeparse import zone
from collector.sink import Writer

HELP = "Import recorded history (Home Assistant, VRM, generic CSV, Pylontech BMS logs) into InfluxDB"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of import."""
    parser.add_argument("--config", type=Path, required=True, help="the TOML config file (InfluxDB, buffer)")
    parser.add_argument("--format", required=True, choices=list(FORMATS), help="input format")
    parser.add_argument("--mapping", type=Path, help="mapping TOML (see deploy/import-mappings/)")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="SRC=MEAS.FIELD[*SCALE][+OFFSET]",
        help="one mapping entry (repeatable), added to the mapping file's",
    )
    parser.add_argument("--site", help="site tag (default: the mapping's site, else the config's)")
    parser.add_argument("--buffer-dir", type=Path, help="buffer directory (default <buffer_dir>/import-<site>)")
    parser.add_argument("--time-column", help="generic: the timestamp column label (default: first column)")
    parser.add_argument("--time-format", help="iso (default) | epoch_s | epoch_ms | epoch_us | epoch_ns | strptime")
    parser.add_argument("--tz", help="zone of naive timestamps (default UTC), e.g. Europe/Madrid")
    parser.add_argument(
        "--stall-deadline-s",
        type=float,
        default=120.0,
        help="give up (exit 1) when InfluxDB takes nothing for this long",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")


def build_spec(args: argparse.Namespace, settings: Settings) -> tuple[ImportSpec, Mapping]:
    """Validate the mapping and flags into an ImportSpec; ConfigError lists every problem."""
    mapping = load_mapping(args.mapping, args.map)
    problems = []
    if mapping.format is not None and mapping.format not in FORMATS:
        problems.append(f"the mapping's format {mapping.format!r} is not one of {', '.join(FORMATS)}")
    elif mapping.format is not None and mapping.format != args.format:
        problems.append(f"the mapping is for format {mapping.format!r}, not {args.format!r}")
    if FORMATS[args.format].needs_map and not mapping.map:
        problems.append(f"--format {args.format} needs [[map]] entries (--mapping FILE or --map ...)")
    missing = [str(p) for p in args.files if not p.is_file()]
    problems.extend(f"{p}: input file not found" for p in missing)
    try:
        tz = zone(args.tz or mapping.tz or "UTC")
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError(problems)
    spec = ImportSpec(
        format=args.format,
        site=args.site or mapping.site or settings.site,
        mapping=mapping,
        tz=tz,
        time_column=args.time_column or mapping.time_column,
        time_format=args.time_format or mapping.time_format or "iso",
    )
    return spec, mapping


def main(args: argparse.Namespace) -> int:
    """Run the import; see the module docstring for exit codes."""
    try:
        settings = load_settings(args.config)
        spec, _ = build_spec(args, settings)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    setup_logging(settings.logging.level, settings.logging.format)
    buffer_dir = args.buffer_dir or Path(settings.collector.buffer_dir) / f"import-{spec.site}"
    c = settings.collector
    try:
        buffer = DiskBuffer(buffer_dir, int(c.buffer_max_mb * 1024 * 1024), c.buffer_sync)
    except (OSError, ValueError, sqlite3.Error) as exc:
        print(f"error: buffer directory {buffer_dir}: {exc} (choose another with --buffer-dir)", file=sys.stderr)
        return 2
    client = InfluxClient(settings.influx)
    try:
        return _run(args, settings, spec, buffer, client)
    except KeyboardInterrupt:
        print(
            f"interrupted: what was read so far is kept in {buffer.directory}; rerun the same command to "
            f"finish (it writes the leftover first and re-imports idempotently)",
            file=sys.stderr,
        )
        return 130
    finally:
        buffer.close()
        client.close()


def _run(
    args: argparse.Namespace, settings: Settings, spec: ImportSpec, buffer: DiskBuffer, client: InfluxClient
) -> int:
    log = get_logger("import")
    c = settings.collector
    writer = Writer(
        buffer, client, DeadLetters(buffer.directory), batch_max_lines=c.batch_max_lines, retry_max_s=c.retry_max_s
    )
    report = ImportReport()
    lander = Lander(buffer, writer, report, limits=LandingLimits(stall_deadline_s=args.stall_deadline_s))
    log.info(
        "import_started",
        format=spec.format,
        site=spec.site,
        files=[str(p) for p in args.files],
        buffer_dir=str(buffer.directory),
    )
    # No CREATE DATABASE here: the writer creates a missing database on first contact (and retries).
    stalled = False
    try:
        run_import(args.files, spec, lander, ImportProgress(report, log, tty_or_none()))
    except ImportStalled as exc:
        log.error(
            "import_stalled",
            error=str(exc),
            backlog=buffer.depth(),
            buffer_dir=str(buffer.directory),
            action="rerun the same command once InfluxDB is reachable",
        )
        stalled = True
    for line in report.summary_lines():
        print(line)
    hint = f"bess-collector dead-letters list --config {args.config} --buffer-dir {buffer.directory}"
    code, errors = verdict(report, stalled, hint)
    for line in errors:
        print(line, file=sys.stderr)
    log.info(
        "import_finished",
        complete=report.complete,
        rows=report.rows_read,
        written=report.lines_written,
        bad_rows=report.bad_rows,
        bad_by_reason=dict(report.bad),
        rejected=report.lines_rejected,
        exit_code=code,
    )
    return code
