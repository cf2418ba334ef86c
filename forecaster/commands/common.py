"""Shared start-up for the forecaster commands: config, logging, InfluxDB, registry, resident models."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from bess_common.errors import ConfigError
from bess_common.influx import InfluxClient
from bess_common.logs import get_logger, setup_logging
from forecaster.config import Settings, load_settings
from forecaster.jobs import ForecastService
from forecaster.models import BaseModelUnavailable, ModelSet, load_pipeline
from forecaster.registry import Registry
from forecaster.store import ForecastStore

log = get_logger("forecaster")


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
    except ValueError:
        print(f"--{option}: not an ISO-8601 time: {text!r}")
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


def runtime(settings: Settings, with_models: bool = True, service: bool = False) -> Runtime:
    """Connect to InfluxDB and load the base model. A load failure is reported in one line, not raised:
    logged by the service, printed to stderr by one-shot commands."""
    client = InfluxClient(settings.influx)
    if settings.influx.create_database:
        client.create_database()
    fs = settings.forecaster
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


def parse_utc_ns(text: str) -> int:
    """ISO-8601 -> int ns; a time without offset is UTC. ValueError when malformed."""
    from datetime import UTC, datetime

    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000
