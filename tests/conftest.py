"""Shared fixtures: real influxd and mosquitto on free loopback ports in a temp dir (never mocks)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bess_common.config import InfluxSettings
from bess_common.influx import InfluxClient
from deploy.localservices import InfluxServer, MosquittoServer
from forecaster.modelbuild import CHRONOS2_QUANTILES, TINY_SIZE, save_random_chronos2

REPO_ROOT = Path(__file__).resolve().parent.parent
# The recorded datasets: ../shared/data beside the checkout (as in CI), or BESS_SHARED_DATA.
SHARED_DATA = Path(os.environ.get("BESS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


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


def run_cli(
    *args: str, timeout_s: float = 120.0, env: dict[str, str] | None = None, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m <package> ...` of this checkout and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env or python_env(),
        cwd=REPO_ROOT,
        input=input_text,
        check=False,
    )


# --- forecaster fixtures (appended by the forecaster helper) -------------------------------------------------

FC_QUANTILES = list(CHRONOS2_QUANTILES)


@pytest.fixture(scope="session")
def tiny_chronos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Chronos-2 saved to a temp dir (offline; loads and predicts in well under 1 s)."""
    path = tmp_path_factory.mktemp("tiny-chronos2")
    save_random_chronos2(path, TINY_SIZE, seed=0)
    return path


def fc_synthetic_rows(
    start_ns: int, end_ns: int, step_s: int = 60, site: str = "shop", *, seed: int = 0, cycle_scale: float = 1.0
) -> list[str]:
    """Synthetic BESS history as `system` line protocol (schema names): quiet nights, PV charging at midday,
    evening discharge: a small, fast series for the forecaster tests (collector.simulator.history gives the
    simulator's full per-second schema)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ts = np.arange(start_ns, end_ns, step_s * 1_000_000_000, dtype=np.int64)
    hour = (ts // 1_000_000_000 % 86400) / 3600.0
    pv = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None) * 4000 * cycle_scale
    load = 300 + 700 * ((hour >= 18) & (hour < 22)) + rng.normal(0, 30, ts.size)
    power = np.where((hour >= 10) & (hour < 15), 2500.0 * cycle_scale, 0.0)
    power = np.where((hour >= 18) & (hour < 22), -1500.0 * cycle_scale, power) + rng.normal(0, 20, ts.size)
    soc = np.clip(50 + np.cumsum(power) * step_s / 3600 / 100, 5, 100)
    volt = 48 + soc / 25
    return [
        f"system,site={site} battery_power_w={p:.1f},battery_voltage_v={v:.3f},battery_soc_pct={s:.2f},"
        f"pv_w={pv_w:.1f},load_w={lw:.1f} {t}"
        for t, p, v, s, pv_w, lw in zip(ts, power, volt, soc, pv, load, strict=True)
    ]
