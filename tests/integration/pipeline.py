"""Shared helpers for the pipeline/collector integration tests (no tests here).

The collector always runs as a real subprocess (`python -m collector run --config ...`) against a real
influxd; the GX is the in-process simulator. Assertions read what landed in InfluxDB.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bess_common.influx import InfluxClient
from tests.conftest import REPO_ROOT, python_env

SECOND_NS = 1_000_000_000


def write_config(
    path: Path,
    influx_url: str,
    *,
    modbus_port: int | None,
    mqtt_port: int | None,
    buffer_dir: Path,
    portal_id: str = "",
    site: str = "t",
    modbus_devices: tuple[str, ...] = (),
    **collector: object,
) -> Path:
    """A config for the collector under test (modbus/mqtt enabled when a port is given; `modbus_devices`:
    [gx] modbus_devices, the device instances to poll over Modbus)."""
    extra = "".join(f"{key} = {_toml(value)}\n" for key, value in collector.items())
    devices = ", ".join(f'"{d}"' for d in modbus_devices)
    path.write_text(
        f'site = "{site}"\n[influx]\nurl = "{influx_url}"\ndatabase = "bess"\ntimeout_s = 3.0\n'
        f'[gx]\nhost = "127.0.0.1"\nmodbus_port = {modbus_port or 502}\nmqtt_port = {mqtt_port or 1883}\n'
        f'portal_id = "{portal_id}"\nmodbus_enabled = {_toml(modbus_port is not None)}\n'
        f"mqtt_enabled = {_toml(mqtt_port is not None)}\nmodbus_devices = [{devices}]\n"
        f'[collector]\ninterval_s = 1.0\nbuffer_dir = "{buffer_dir}"\nmetrics_port = 0\n'
        f"retry_max_s = 2.0\nflush_interval_s = 0.5\n{extra}"
        f'[logging]\nformat = "json"\nlevel = "info"\n'
    )
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return f'"{value}"'
    return str(value)


@dataclass
class CollectorProcess:
    """The collector as a subprocess; its log (JSON lines) goes to a file."""

    config: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    exit_codes: list[int] = field(default_factory=list)

    def start(self) -> CollectorProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "collector", "run", "--config", str(self.config)],
            cwd=REPO_ROOT,
            env=python_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Send `sig`, wait, return the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout_s)
        self.exit_codes.append(code)
        self.proc = None
        return code

    def kill_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def collector_running(config: Path, log_path: Path | None = None) -> Iterator[CollectorProcess]:
    """The collector running for the `with` block (its log in `log_path`, collector.log beside the config by
    default), stopped with SIGTERM on the way out, whatever happened; then it must have exited 0 (the
    AssertionError carries its log's tail)."""
    collector = CollectorProcess(config, log_path or config.parent / "collector.log").start()
    try:
        yield collector
    finally:
        code = collector.stop()
    assert code == 0, collector.log()[-3000:]


def next_window(window_s: int, settle_s: float = 2.5) -> tuple[int, int]:
    """[start, end) ns of the next `window_s` whole seconds, returned once they are over and `settle_s` more have
    passed (the 1 Hz grid closes a second late and the buffer flushes every 0.5 s)."""
    start = (time.time_ns() // SECOND_NS + 1) * SECOND_NS
    end = start + window_s * SECOND_NS
    time.sleep((end - time.time_ns()) / 1e9 + settle_s)
    return start, end


def times_of(client: InfluxClient, query: str) -> list[int]:
    """The `time` column (ns) of a query, in order."""
    series = client.query(query)
    return [int(row[0]) for s in series for row in s.values]


def shunt_seconds(client: InfluxClient, start_ns: int, end_ns: int, field_name: str = "voltage_v") -> list[int]:
    """Timestamps (ns) of shunt rows with `field_name` in [start, end)."""
    return times_of(
        client,
        f"SELECT \"{field_name}\" FROM battery WHERE device = 'shunt' AND time >= {start_ns} AND time < {end_ns}",
    )


def first_shunt_second(client: InfluxClient, since_ns: int) -> int | None:
    """The first shunt row's timestamp at or after since_ns."""
    found = times_of(client, f"SELECT voltage_v FROM battery WHERE device = 'shunt' AND time >= {since_ns} LIMIT 1")
    return found[0] if found else None


def whole_seconds(start_ns: int, end_ns: int) -> list[int]:
    """Every whole second in [start, end)."""
    first = -(-start_ns // SECOND_NS) * SECOND_NS
    return list(range(first, end_ns, SECOND_NS))


def health_rows(client: InfluxClient, since_ns: int = 0) -> list[dict[str, Any]]:
    """collector_health rows since a time, oldest first."""
    series = client.query(f"SELECT * FROM collector_health WHERE time >= {since_ns}")
    return [row for s in series for row in s.rows()]


def log_events(log_text: str) -> list[str]:
    """The `event` of every JSON log line."""
    import json

    events = []
    for line in log_text.splitlines():
        if line.startswith("{"):
            try:
                events.append(str(json.loads(line).get("event")))
            except ValueError:
                continue
    return events
