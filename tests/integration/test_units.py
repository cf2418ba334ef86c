"""The systemd units: `systemd-analyze verify` clean, hardened, and consistent with the CLIs and config."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bess_common.config import CREDENTIALS, InfluxSettings
from bess_common.influx import InfluxClient
from collector.cli import COMMANDS as COLLECTOR_COMMANDS
from deploy.localservices import InfluxServer, free_port
from forecaster.cli import COMMANDS as FORECASTER_COMMANDS
from tests.conftest import python_env

REPO_ROOT = Path(__file__).resolve().parents[2]
UNIT_DIR = REPO_ROOT / "systemd"
UNITS = ["bess-collector", "bess-forecaster", "bess-finetune"]
SERVICES = ["bess-collector", "bess-forecaster"]
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (apt install systemd)"
)

pytestmark = pytest.mark.integration

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "User": "bess-edge",
    "StateDirectory": "bess-edge",
}


def directives(unit: str) -> dict[str, list[str]]:
    """Key -> every value (in order) of a unit file; comments and section headers dropped."""
    found: dict[str, list[str]] = {}
    for line in (UNIT_DIR / f"{unit}.service").read_text().splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def analyzable_copy(unit: str, tmp_path: Path, text: str | None = None) -> Path:
    """The unit with ExecStart's program replaced by an executable that exists here (verify checks it)."""
    program = tmp_path / "bin" / "fake-bess"
    program.parent.mkdir(exist_ok=True)
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    text = text if text is not None else (UNIT_DIR / f"{unit}.service").read_text()
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={program}", text, flags=re.MULTILINE)
    path = tmp_path / f"{unit}.service"
    path.write_text(text)
    return path


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run([SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=60, check=False)


@needs_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_when_verified_then_no_errors_and_no_warnings(unit: str, tmp_path: Path) -> None:
    result = analyze("verify", str(analyzable_copy(unit, tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", f"systemd-analyze warned about {unit}:\n{result.stderr}"


@needs_analyze
def test_when_a_unit_has_a_typo_then_verify_reports_it(tmp_path: Path) -> None:
    text = (UNIT_DIR / "bess-collector.service").read_text().replace("ProtectHome=yes", "ProtectHomes=yes")
    result = analyze("verify", str(analyzable_copy("bess-collector", tmp_path, text)))
    assert "Unknown key" in result.stderr and "ProtectHomes" in result.stderr


def exposure(unit: str, tmp_path: Path) -> float:
    result = analyze("security", "--offline=yes", str(analyzable_copy(unit, tmp_path)))
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


@needs_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_exposure_score_is_low_and_recorded_in_the_docs(unit: str, tmp_path: Path) -> None:
    score = exposure(unit, tmp_path)
    assert score <= 2.0, f"{unit}: exposure {score} (hardening lost?)"
    docs = (REPO_ROOT / "docs" / "install.md").read_text()
    recorded = re.search(rf"\| `{unit}\.service` \| (\d+\.\d+) ", docs)
    assert recorded, f"docs/install.md does not record the exposure of {unit}.service"
    version = analyze("--version").stdout.split()[1]
    if f"systemd {version}" in docs:  # the scores are only comparable under the systemd that measured them
        assert float(recorded.group(1)) == score, f"docs/install.md records {recorded.group(1)}, measured {score}"


@pytest.mark.parametrize("unit", UNITS)
def test_every_unit_is_hardened_and_runs_as_the_service_user(unit: str) -> None:
    found = directives(unit)
    for key, value in HARDENING.items():
        assert found.get(key) == [value], f"{unit}: {key}={found.get(key)}"
    assert found["MemoryMax"], f"{unit} has no memory limit"


@pytest.mark.parametrize("unit", SERVICES)
def test_services_notify_keep_a_watchdog_and_restart_on_failure(unit: str) -> None:
    found = directives(unit)
    assert found["Type"] == ["notify"]
    assert float(found["WatchdogSec"][0]) > 0
    assert found["Restart"] == ["on-failure"]


def test_collector_retries_even_bad_config_but_forecaster_does_not() -> None:
    # The collector heals itself once a config or credential file is fixed; the forecaster's restarts
    # cost model loads the collector would pay for in CPU.
    assert "RestartPreventExitStatus" not in directives("bess-collector")
    assert directives("bess-forecaster")["RestartPreventExitStatus"] == ["2"]


def test_finetune_is_a_low_priority_oneshot() -> None:
    found = directives("bess-finetune")
    assert found["Type"] == ["oneshot"]
    assert int(found["Nice"][0]) > 0
    assert int(found["CPUWeight"][0]) < 100


def test_collector_outlives_the_forecaster_under_memory_pressure() -> None:
    collector = int(directives("bess-collector")["OOMScoreAdjust"][0])
    for unit in ("bess-forecaster", "bess-finetune"):
        assert int(directives(unit)["OOMScoreAdjust"][0]) > collector
    # A killed fine-tune child must not stop the forecasts.
    assert directives("bess-forecaster")["OOMPolicy"] == ["continue"]


@pytest.mark.parametrize(
    ("unit", "program", "command", "registry"),
    [
        ("bess-collector", "bess-collector", "run", COLLECTOR_COMMANDS),
        ("bess-forecaster", "bess-forecaster", "serve", FORECASTER_COMMANDS),
        ("bess-finetune", "bess-forecaster", "finetune", FORECASTER_COMMANDS),
    ],
)
def test_execstart_runs_an_installed_console_script_with_the_shared_config(
    unit: str, program: str, command: str, registry: dict[str, str]
) -> None:
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert re.search(rf"^{program} = ", pyproject, re.MULTILINE), f"{program} is not a console script"
    assert command in registry
    (exec_start,) = directives(unit)["ExecStart"]
    argv = exec_start.split()
    assert argv[:2] == [f"/opt/bess-edge/venv/bin/{program}", command]
    assert argv[argv.index("--config") + 1] == "/etc/bess-edge/config.toml"


@pytest.mark.parametrize("unit", UNITS)
def test_missing_credential_files_do_not_block_start(unit: str) -> None:
    found = directives(unit)
    loaded = {value.split(":", 1)[0]: value.split(":", 1)[1] for value in found.get("LoadCredential", [])}
    defaults = {value.split(":", 1)[0] for value in found.get("SetCredential", [])}
    influx = {name for name in CREDENTIALS if name.startswith("influx_")}
    assert influx <= set(loaded), f"{unit} lacks the InfluxDB credentials"
    assert set(loaded) <= set(CREDENTIALS), "a credential the config loader does not read"
    assert set(loaded) == defaults, "every LoadCredential= needs a SetCredential= fallback"
    for name, path in loaded.items():
        assert path == f"/etc/bess-edge/credentials/{name}"


def test_collector_gets_the_mqtt_password() -> None:
    assert any(v.startswith("mqtt_password:") for v in directives("bess-collector")["LoadCredential"])


# Runs the collector CLI with the kernel's MDWE (Linux >= 6.3): the same rule as the unit's
# MemoryDenyWriteExecute=yes, no writable+executable memory, ever.
MDWE_LAUNCHER = """
import ctypes, sys
if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(77)
from collector.cli import main
sys.exit(main(sys.argv[1:]))
"""


def mdwe_supported() -> bool:
    probe = subprocess.run([sys.executable, "-c", MDWE_LAUNCHER, "--help"], capture_output=True, check=False)
    return probe.returncode != 77


@pytest.mark.parametrize("deny_write_execute", [False, True], ids=["plain", "memory-deny-write-execute"])
def test_collector_run_reports_ready_pings_the_watchdog_and_reports_stopping(
    tmp_path: Path, influx_server: InfluxServer, deny_write_execute: bool
) -> None:
    """The contract Type=notify + WatchdogSec= relies on, with the real `bess-collector run` (GX absent)."""
    if deny_write_execute and not mdwe_supported():
        pytest.skip("kernel without PR_SET_MDWE (Linux < 6.3): cannot emulate MemoryDenyWriteExecute=")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[influx]\nurl = "{influx_server.url}"\n'
        f'[gx]\nhost = "127.0.0.1"\nmodbus_port = {free_port()}\nmqtt_port = {free_port()}\n'
        f'[collector]\nbuffer_dir = "{tmp_path / "buffer"}"\nmetrics_port = 0\nhealth_interval_s = 1.0\n'
    )
    launch = ["-c", MDWE_LAUNCHER] if deny_write_execute else ["-m", "collector"]
    env = python_env()
    env.update({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "1000000"})
    env.pop("WATCHDOG_PID", None)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(env["NOTIFY_SOCKET"])
        sock.settimeout(30.0)
        proc = subprocess.Popen(
            [sys.executable, *launch, "run", "--config", str(config)],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            received = [sock.recv(4096).decode()]
            while not received[-1].startswith("READY=1"):
                received.append(sock.recv(4096).decode())
            sock.settimeout(2.0)  # WatchdogSec=1 s -> a ping every 0.5 s while healthy
            pings = 0
            while pings < 3:
                pings += sock.recv(4096).decode() == "WATCHDOG=1"
            proc.send_signal(signal.SIGTERM)
            sock.settimeout(15.0)
            while not (message := sock.recv(4096).decode()).startswith("STOPPING=1"):
                pass
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert pings == 3
    assert message.startswith("STOPPING=1")
    assert proc.returncode == 0, out
    # The whole path ran (threads, SQLite buffer, HTTP writes): its own health rows reached InfluxDB.
    client = InfluxClient(InfluxSettings(url=influx_server.url, database="bess"))
    try:
        rows = [row for series in client.query("SELECT * FROM collector_health") for row in series.rows()]
    finally:
        client.close()
    assert rows, out
