"""`bess-collector check-config --config FILE`: validate the config without starting anything.

Prints "OK: <summary>" and exits 0, or every problem on its own line (stderr) and exits 2. Besides the
schema it checks what can be checked offline or cheaply: the buffer directory is usable, the buffer limit
is large enough, and the InfluxDB and GX host names resolve.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from bess_common.config import env_warnings
from bess_common.errors import ConfigError
from collector.buffer.sqlite import MIN_MAX_BYTES
from collector.config import Settings, load_settings

HELP = "Validate the config file: print OK and exit 0, or every problem and exit 2"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of check-config."""
    parser.add_argument("--config", type=Path, required=True, help="the TOML config file")


def resolve_problem(what: str, host: str) -> str | None:
    """A plain line when `host` does not resolve (IP literals always pass)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None
    except ValueError:
        pass
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError) as exc:
        detail = getattr(exc, "strerror", None) or exc
        return f"{what}: host name {host!r} does not resolve ({detail}); check the spelling or DNS"
    return None


def influx_host_problem(settings: Settings) -> str | None:
    """The InfluxDB URL's host must resolve (an unreachable server is fine: the buffer waits for it)."""
    return resolve_problem("influx.url", urlsplit(settings.influx.url).hostname or "")


def buffer_problems(settings: Settings) -> list[str]:
    """The buffer directory must be creatable and writable; the limit must hold a useful amount."""
    c = settings.collector
    problems = []
    if c.buffer_max_mb * 1024 * 1024 < MIN_MAX_BYTES:
        problems.append(
            f"collector.buffer_max_mb: must be at least {MIN_MAX_BYTES / 1024 / 1024:.3f} MB (got {c.buffer_max_mb})"
        )
    directory = Path(c.buffer_dir)
    existing = next((p for p in (directory, *directory.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        problems.append(f"collector.buffer_dir: {existing} exists but is not a directory")
    elif existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        problems.append(
            f"collector.buffer_dir: {existing} is not writable by this user (uid {os.getuid()}); "
            f"fix the permissions or choose another directory"
        )
    return problems


def settings_problems(settings: Settings, resolve_gx: bool = True) -> list[str]:
    """Every problem found beyond the schema, one plain line each."""
    problems = buffer_problems(settings)
    influx = influx_host_problem(settings)
    if influx:
        problems.append(influx)
    if resolve_gx and (settings.gx.modbus_enabled or settings.gx.mqtt_enabled):
        gx = resolve_problem("gx.host", settings.gx.host)
        if gx:
            problems.append(gx)
    if not settings.gx.modbus_enabled and not settings.gx.mqtt_enabled:
        problems.append("gx: both modbus_enabled and mqtt_enabled are false; nothing would be collected")
    return problems


def summary(settings: Settings) -> str:
    """One line describing what the config asks for."""
    c, gx = settings.collector, settings.gx
    sources = [name for name, on in (("mqtt", gx.mqtt_enabled), ("modbus", gx.modbus_enabled)) if on]
    metrics = f"{c.metrics_host}:{c.metrics_port}" if c.metrics_port else "off"
    return (
        f"site={settings.site} influx={settings.influx.url} db={settings.influx.database} "
        f"gx={gx.host} sources={'+'.join(sources)} interval={c.interval_s}s buffer={c.buffer_dir} "
        f"({c.buffer_max_mb:g} MB) metrics={metrics}"
    )


def print_problems(problems: list[str]) -> None:
    """Each problem on its own line on stderr."""
    for line in problems:
        print(line, file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    """Exit 0 with OK, or 2 with every problem."""
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print_problems(exc.problems)
        return 2
    problems = settings_problems(settings)
    if problems:
        print_problems(problems)
        return 2
    for line in env_warnings(Settings):
        print(f"warning: {line}", file=sys.stderr)
    print(f"OK: {summary(settings)}")
    return 0
