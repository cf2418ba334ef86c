"""Shared start-up for the forecaster commands: config, logging, InfluxDB, registry, resident models."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bess_common.config import env_warnings
from bess_common.errors import ConfigError, RetryableError
from bess_common.influx import AuthError, InfluxClient
from bess_common.influxwait import wait_for_influx
from bess_common.logs import get_logger, setup_logging
from forecaster.config import Settings, load_settings
from forecaster.jobs import ForecastService
from forecaster.models import BaseModelUnavailable, ModelSet, load_pipeline
from forecaster.registry import Registry
from forecaster.store import ForecastStore

log = get_logger("forecaster")
# InfluxDB stores int64 ns; keep a day of margin for windows and horizons around a given time.
MIN_TIME_NS = -(2**63) + 86_400 * 1_000_000_000
MAX_TIME_NS = 2**63 - 1 - 86_400 * 1_000_000_000 * 30


def add_config(parser: argparse.ArgumentParser) -> None:
    """--config FILE (the shared TOML file)."""
    parser.add_argument("--config", type=Path, default=None, help="TOML config file (env BESS_* overrides)")


def load(args: argparse.Namespace) -> Settings | None:
    """Settings with logging set up, or None after printing every config problem (exit 2)."""
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return None
    setup_logging(settings.logging.level, settings.logging.format)
    for line in env_warnings(Settings):
        log.warning("env_ignored", problem=line)
    return settings


def load_with_time(args: argparse.Namespace, option: str) -> tuple[Settings, int | None] | None:
    """`load(args)` plus the optional ISO-8601 UTC time of `--<option>` as int ns (None when not given);
    None after printing the config problems or the malformed time (exit 2)."""
    settings = load(args)
    if settings is None:
        return None
    text = getattr(args, option)
    try:
        return settings, (parse_utc_ns(text) if text else None)
    except ValueError as exc:
        print(f"--{option}: {exc}")
        return None


@dataclass
class Runtime:
    """Everything a command needs, built once."""

    settings: Settings
    client: InfluxClient
    store: ForecastStore
    registry: Registry
    models: ModelSet | None
    base_error: str

    def service(self) -> ForecastService:
        """The forecast/score jobs over this runtime."""
        return ForecastService(
            self.settings.forecaster,
            self.settings.site,
            self.store,
            self.registry,
            self.models,
            base_error=self.base_error,
        )


def runtime(
    settings: Settings,
    with_models: bool = True,
    service: bool = False,
    *,
    stop: threading.Event | None = None,
    on_wait: Callable[[float], object] | None = None,
) -> Runtime | int:
    """Wait for InfluxDB, then load the base model; an exit code when the command cannot go on.

    InfluxDB not up yet: the service waits for ever (until `stop`), a one-shot command for
    `forecaster.influx_wait_s`, then says so in one line (exit 1). Refused credentials: one line, exit 2.
    A model load failure is reported in one line, not raised: logged by the service, printed to stderr by
    one-shot commands."""
    client = InfluxClient(settings.influx)
    fs = settings.forecaster
    try:
        up = wait_for_influx(
            client,
            create_database=settings.influx.create_database,
            timeout_s=None if service else fs.influx_wait_s,
            stop=stop,
            on_wait=on_wait,
        )
    except AuthError as exc:
        print(f"influx: {exc}", file=sys.stderr)
        return 2
    except RetryableError as exc:
        print(f"influx: {exc}", file=sys.stderr)
        return 1
    if not up:
        return 0  # stopped while waiting
    models = None
    error = ""
    if with_models:
        try:
            models = ModelSet(load_pipeline(fs.base_model, fs.num_threads), fs.base_model)
        except BaseModelUnavailable as exc:
            error = str(exc)
            if service:
                log.error(error, running="baselines only")
            else:
                print(error, file=sys.stderr)
    return Runtime(settings, client, ForecastStore(client, settings.site), Registry(fs.registry_dir), models, error)


def context_notes(settings: Settings, models: ModelSet | None) -> list[str]:
    """One line per task whose context is longer than the model can use (the model cuts it silently)."""
    if models is None:
        return []
    limit = int(getattr(models.pipeline, "model_context_length", 0) or 0)
    return [
        f"task {t.name}: context_steps {t.context_steps} is longer than the model's limit {limit}; only the last "
        f"{limit} steps are used (set context_steps <= {limit} to read less from InfluxDB)"
        for t in settings.forecaster.tasks
        if limit and t.context_steps > limit
    ]


def parse_utc_ns(text: str) -> int:
    """ISO-8601 -> int ns; a time without offset is UTC. ValueError when malformed."""
    from datetime import UTC, datetime

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO-8601 time: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    ns = int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000
    if not MIN_TIME_NS <= ns <= MAX_TIME_NS:
        raise ValueError(f"{text!r} is outside the times InfluxDB can store (1677-09-22 .. 2262-04-11)")
    return ns
