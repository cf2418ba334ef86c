"""The real processes a collector benchmark runs: influxd, mosquitto, the simulator and the collector.

The simulator and the collector each run as their own `python -m collector ...` subprocess, so the CPU and
RSS measured for the collector are its own. Nothing here is mocked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.collector_core import Completeness, completeness, parse_metrics, series_label
from bench.common import REPO_ROOT
from bess_common.config import InfluxSettings
from bess_common.influx import InfluxClient
from collector.gx.tables import unit_for_instance
from collector.simulator.devices import DEVICES
from deploy.localservices import InfluxServer, MosquittoServer, free_port, logged_port

SECOND_NS = 1_000_000_000
# the 1 Hz tables whose completeness the steady phase checks: the pack, the cells, the system and every
# simulated device (the Multi, two MPPTs and the grid meter: docs/schema.md)
GRID_MEASUREMENTS = ("battery", "cell", "system", "inverter", "solarcharger", "meter")


def python_env() -> dict[str, str]:
    """Environment for `python -m collector` subprocesses of this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Services:
    """influxd + mosquitto in a work folder, with a client factory per database."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.influx = InfluxServer(workdir / "influxd")
        self.mosquitto = MosquittoServer(workdir / "mosquitto")

    def __enter__(self) -> Services:
        self.influx.start()
        self.mosquitto.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mosquitto.stop()
        self.influx.stop()

    def client(self, database: str) -> InfluxClient:
        """A client on `database` (created)."""
        client = InfluxClient(InfluxSettings(url=self.influx.url, database=database, timeout_s=60.0))
        client.create_database()
        return client


class _Child:
    """A `python -m collector ...` subprocess with its output in a log file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self.log_from = log_path.stat().st_size if log_path.exists() else 0  # where this run's log starts
        log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "collector", *args],
            cwd=REPO_ROOT,
            env=python_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, wait (SIGKILL after the timeout); the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of its log."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


class Simulator(_Child):
    """`collector simulate` live: Modbus on a free port, MQTT on the broker."""

    def __init__(self, workdir: Path, mqtt_port: int, *, seed: int, cells: int, start_timeout_s: float = 60) -> None:
        super().__init__(
            [
                "simulate",
                "--modbus-port",
                "0",  # the OS picks a free port; the simulator logs which
                "--mqtt-port",
                str(mqtt_port),
                "--seed",
                str(seed),
                "--cells",
                str(cells),
                "--log-level",
                "info",
            ],
            workdir / f"simulator-{seed}-{cells}.log",
        )
        try:  # it computes the first chunk of the day (< 1 s) before it listens
            self.modbus_port = logged_port(
                self.proc,
                self.log_path,
                "simulator_started",
                "modbus_port",
                timeout_s=start_timeout_s,
                since=self.log_from,
            )
        except (TimeoutError, RuntimeError):
            self.stop()
            raise


@dataclass(frozen=True)
class CollectorConfig:
    """What differs between the benchmark's collector runs."""

    database: str
    buffer_dir: Path
    modbus_port: int
    mqtt_port: int
    metrics_port: int


def simulated_devices() -> list[str]:
    """[gx] modbus_devices for the simulator's devices (the default inverter, vebus: not the Multi RS)."""
    return [f"{s}/{i}" for role, (s, i) in DEVICES.items() if role != "multi" and unit_for_instance(i) is not None]


def config_text(c: CollectorConfig, influx_url: str) -> str:
    """A production-like config: both sources (every simulated device over Modbus too), every default kept
    except addresses and folders."""
    devices = ", ".join(f'"{d}"' for d in simulated_devices())
    return (
        f'site = "bench"\n[influx]\nurl = "{influx_url}"\ndatabase = "{c.database}"\n'
        f'[gx]\nhost = "127.0.0.1"\nmodbus_port = {c.modbus_port}\nmqtt_port = {c.mqtt_port}\n'
        f"modbus_enabled = true\nmqtt_enabled = true\nmodbus_devices = [{devices}]\n"
        f'[collector]\nbuffer_dir = "{c.buffer_dir}"\nmetrics_port = {c.metrics_port}\n'
        f'[logging]\nformat = "json"\nlevel = "info"\n'
    )


class Collector(_Child):
    """`collector run --config` with /metrics on a known port."""

    def __init__(
        self, workdir: Path, services: Services, sim: Simulator, database: str, buffer_dir: Path | None = None
    ) -> None:
        self.config = CollectorConfig(
            database,
            buffer_dir or workdir / f"buffer-{database}",
            sim.modbus_port,
            services.mosquitto.port,
            free_port(),
        )
        path = workdir / f"collector-{database}.toml"
        path.write_text(config_text(self.config, services.influx.url))
        super().__init__(["run", "--config", str(path)], workdir / f"collector-{database}.log")

    def metrics(self) -> dict[str, float]:
        """The current /metrics as {name: value} (empty while the endpoint is not up yet)."""
        url = f"http://127.0.0.1:{self.config.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return parse_metrics(resp.read().decode())
        except OSError:
            return {}

    def wait_written(self, at_least: float, timeout_s: float) -> None:
        """Block until lines_written reaches `at_least`; RuntimeError (with the log) on timeout or death."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"collector exited {self.proc.returncode}:\n{self.log_tail()}")
            if self.metrics().get("bess_collector_lines_written_total", 0.0) >= at_least:
                return
            time.sleep(0.25)
        raise RuntimeError(f"collector wrote fewer than {at_least} lines in {timeout_s}s:\n{self.log_tail()}")


def next_second_ns() -> int:
    """The next whole UTC second, in ns."""
    return (time.time_ns() // SECOND_NS + 1) * SECOND_NS


def sleep_until_ns(ts_ns: int) -> None:
    """Sleep until the wall clock reaches ts_ns."""
    delay = (ts_ns - time.time_ns()) / 1e9
    if delay > 0:
        time.sleep(delay)


def grid_completeness(
    client: InfluxClient, start_ns: int, end_ns: int, measurements: tuple[str, ...] = GRID_MEASUREMENTS
) -> Completeness:
    """count(*) of every grid field per series over [start, end), as shares of the seconds in the window."""
    names = ",".join(f'"{m}"' for m in measurements)
    q = f"SELECT count(*) FROM {names} WHERE time >= {start_ns} AND time < {end_ns} GROUP BY *"
    counts = []
    for series in client.query(q):
        rows = series.rows()
        if rows:
            counts.append((series_label(series.name, series.tags), rows[0]))
    return completeness(counts, int((end_ns - start_ns) // SECOND_NS))
