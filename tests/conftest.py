"""Shared fixtures: real influxd and mosquitto on free loopback ports in a temp dir (never mocks)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.common.config import InfluxSettings
from collector.common.influx import InfluxClient
from collector.common.localservices import InfluxServer, MosquittoServer

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def influx_server(tmp_path: Path) -> Iterator[InfluxServer]:
    """A fresh influxd 1.x for this test (starts in well under a second)."""
    server = InfluxServer(tmp_path / "influxd")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influx(influx_server: InfluxServer) -> Iterator[InfluxClient]:
    """A client on database `bess` of a fresh influxd."""
    client = InfluxClient(InfluxSettings(url=influx_server.url, database="bess"))
    client.create_database()
    yield client
    client.close()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A fresh mosquitto broker for this test."""
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def python_env() -> dict[str, str]:
    """Environment for subprocesses running this checkout's code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(*args: str, timeout_s: float = 120.0, env: dict[str, str] | None = None,
            input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m <package> ...` of this checkout and capture its output."""
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout_s,
                          env=env or python_env(), cwd=REPO_ROOT, input=input_text, check=False)
