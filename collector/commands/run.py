"""`bess-collector run --config FILE`: the collector daemon, until SIGTERM/SIGINT.

Start-up order: validate the config (exit 2 with every problem before anything starts), then the checks
that need the network but must fail fast (the InfluxDB host must resolve; 401/403 means wrong credentials:
exit 2; a refused connection is fine, the buffer holds the data until InfluxDB is up), then the agent.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from types import FrameType

from bess_common import systemd
from bess_common.errors import ConfigError, FatalError, RejectedError, RetryableError
from bess_common.influx import AuthError, InfluxClient
from bess_common.logs import get_logger, setup_logging
from collector.agent import Agent, build_sources
from collector.commands.check_config import buffer_problems, influx_host_problem, print_problems
from collector.config import Settings, load_settings

HELP = "Run the collector daemon: GX -> 1 Hz grid -> durable buffer -> InfluxDB (until SIGTERM)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of run."""
    parser.add_argument("--config", type=Path, required=True, help="the TOML config file")


def influx_start_problem(client: InfluxClient, settings: Settings) -> str | None:
    """Probe InfluxDB once: a plain line for wrong credentials; None otherwise (down is not a problem)."""
    log = get_logger("run")
    try:
        version = client.ping()
    except RetryableError as exc:
        log.warning("influx_unreachable_at_start", error=str(exc), action="buffering until InfluxDB is up")
        return None
    try:
        if settings.influx.create_database:
            try:
                client.create_database()
            except AuthError as exc:
                log.warning("influx_cannot_create_database", error=str(exc), action="assuming it exists")
        client.query("SHOW MEASUREMENTS LIMIT 1")
        _apply_retention(client, settings)
    except AuthError as exc:
        return f"influx: {exc}"
    except (RetryableError, RejectedError) as exc:
        log.warning("influx_probe_failed", error=str(exc), action="continuing; the writer retries")
        return None
    log.info("influx_reachable", url=settings.influx.url, version=version, database=settings.influx.database)
    return None


def _apply_retention(client: InfluxClient, settings: Settings) -> None:
    """influx.retention_duration, when set: on 1.x at start; where refused (2.x/3.x) a warning says what to do."""
    log = get_logger("run")
    try:
        changed = client.apply_retention()
    except RejectedError as exc:
        log.warning(
            "influx_retention_not_set",
            error=str(exc),
            duration=settings.influx.retention_duration,
            action="on InfluxDB 2.x/3.x set the bucket's retention period there (docs/operations.md)",
        )
        return
    if changed:
        log.info("influx_retention_set", change=changed, database=settings.influx.database)


def _install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()  # only a flag: the main loop does the work

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _startup_problems(path: Path) -> tuple[Settings | None, list[str]]:
    """Load the config and run the offline checks; every problem as a plain line."""
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        return None, exc.problems
    problems = buffer_problems(settings)
    host = influx_host_problem(settings)
    return settings, problems + ([host] if host else [])


def _serve(settings: Settings, client: InfluxClient) -> int:
    """Run the agent until SIGTERM/SIGINT, then stop it (flushing within the deadline)."""
    log = get_logger("run")
    stop = threading.Event()
    _install_signal_handlers(stop)
    systemd.extend_timeout(120)  # opening a large backlog runs an integrity check on the buffer file
    try:
        agent = Agent(settings, client, build_sources(settings))
        agent.start()
    except ConfigError as exc:
        print_problems(exc.problems)
        return 2
    except FatalError as exc:
        print_problems([str(exc)])
        return 2
    except Exception as exc:
        log.exception("collector_start_failed", error=repr(exc))
        return 1
    systemd.ready("collecting")
    watchdog = systemd.Watchdog(agent.healthy)
    watchdog.start()
    while not stop.wait(1.0):
        pass
    systemd.stopping("flushing the buffer")
    watchdog.stop()
    agent.stop()
    return 0


def main(args: argparse.Namespace) -> int:
    """Exit 0 after a clean stop, 1 on a runtime failure, 2 on bad config or credentials."""
    settings, problems = _startup_problems(args.config)
    if settings is None or problems:
        print_problems(problems)
        return 2
    setup_logging(settings.logging.level, settings.logging.format)
    client = InfluxClient(settings.influx)
    try:
        problem = influx_start_problem(client, settings)
        if problem:
            print_problems([problem])
            return 2
        return _serve(settings, client)
    finally:
        client.close()
