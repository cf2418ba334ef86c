"""deploy/install.sh run for real into a temporary root (--destdir), checked by what it leaves behind."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.integration.test_units import SYSTEMD_ANALYZE, analyzable_copy, analyze

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "deploy" / "install.sh"
UNITS = ["bess-collector", "bess-forecaster", "bess-finetune"]


def install(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", str(SCRIPT), "--destdir", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    return result


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Path -> (mode, mtime_ns, content) for everything under root."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        found[str(path.relative_to(root))] = (info.st_mode, info.st_mtime_ns, content)
    return found


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def installed(root: Path) -> subprocess.CompletedProcess[str]:
    result = install(root, "--no-venv")
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_when_installed_then_units_config_and_credentials_are_in_place(
    root: Path, installed: subprocess.CompletedProcess[str]
) -> None:
    for unit in UNITS:
        placed = root / "etc/systemd/system" / f"{unit}.service"
        assert placed.read_text() == (REPO_ROOT / "systemd" / f"{unit}.service").read_text()
        assert mode(placed) == 0o644
    config = root / "etc/bess-edge/config.toml"
    assert config.read_text() == (REPO_ROOT / "deploy/config.example.toml").read_text()
    assert mode(config) == 0o640
    assert mode(root / "etc/bess-edge") == 0o750
    assert mode(root / "etc/bess-edge/credentials") == 0o700
    assert list((root / "etc/bess-edge/credentials").iterdir()) == []
    assert (root / "opt/bess-edge/share/docs/install.md").read_text() == (REPO_ROOT / "docs/install.md").read_text()
    assert (root / "opt/bess-edge/share/config.example.toml").is_file()
    assert not (root / "opt/bess-edge/venv").exists()


def test_install_reports_each_action_and_what_it_skipped(installed: subprocess.CompletedProcess[str]) -> None:
    out = installed.stdout
    assert "skipped: creating user bess-edge (--destdir)" in out
    assert "useradd --system" in out  # tells the operator what to run on the target
    assert "skipped: virtualenv (--no-venv)" in out
    assert out.count("installed: ") >= len(UNITS) + 1
    assert "next steps" in out


def test_when_run_twice_then_nothing_changes_and_it_says_so(
    root: Path, installed: subprocess.CompletedProcess[str]
) -> None:
    before = snapshot(root)
    again = install(root, "--no-venv")
    assert again.returncode == 0, again.stderr
    assert "nothing to do: already installed and up to date" in again.stdout
    assert "installed: " not in again.stdout and "created: " not in again.stdout
    assert snapshot(root) == before


def test_when_the_operator_edited_the_config_then_reinstall_keeps_it(
    root: Path, installed: subprocess.CompletedProcess[str]
) -> None:
    config = root / "etc/bess-edge/config.toml"
    config.write_text('site = "garage"\n[gx]\nhost = "10.0.0.5"\n')
    again = install(root, "--no-venv")
    assert again.returncode == 0
    assert config.read_text() == 'site = "garage"\n[gx]\nhost = "10.0.0.5"\n'
    assert "kept: " in again.stdout


def test_when_a_unit_changed_then_reinstall_replaces_only_that_unit(
    root: Path, installed: subprocess.CompletedProcess[str]
) -> None:
    unit = root / "etc/systemd/system/bess-collector.service"
    unit.write_text("[Service]\nExecStart=/bin/false\n")
    again = install(root, "--no-venv")
    assert unit.read_text() == (REPO_ROOT / "systemd/bess-collector.service").read_text()
    assert f"installed: {unit}" in again.stdout
    assert "unchanged: " + str(root / "etc/systemd/system/bess-forecaster.service") in again.stdout


def test_when_prefix_and_etc_are_custom_then_the_units_point_there(root: Path) -> None:
    result = install(root, "--no-venv", "--prefix", "/srv/bess", "--etc", "/srv/bess-etc")
    assert result.returncode == 0, result.stderr
    text = (root / "etc/systemd/system/bess-collector.service").read_text()
    assert "ExecStart=/srv/bess/venv/bin/bess-collector run --config /srv/bess-etc/config.toml" in text
    assert "LoadCredential=influx_token:/srv/bess-etc/credentials/influx_token" in text
    assert "/opt/bess-edge" not in text and "/etc/bess-edge" not in text
    assert (root / "srv/bess-etc/config.toml").is_file()
    assert mode(root / "srv/bess-etc/credentials") == 0o700
    if SYSTEMD_ANALYZE:  # the rewritten units are still valid
        for unit in UNITS:
            copy = analyzable_copy(unit, root.parent, (root / "etc/systemd/system" / f"{unit}.service").read_text())
            verified = analyze("verify", str(copy))
            assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr


def test_uninstall_keeps_config_and_state_unless_purged(
    root: Path, installed: subprocess.CompletedProcess[str]
) -> None:
    buffered = root / "var/lib/bess-edge/buffer/buffer.sqlite"
    buffered.parent.mkdir(parents=True)
    buffered.write_bytes(b"unsent data")

    removed = install(root, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    for unit in UNITS:
        assert not (root / "etc/systemd/system" / f"{unit}.service").exists()
    assert not (root / "opt/bess-edge").exists()
    assert (root / "etc/bess-edge/config.toml").is_file()
    assert buffered.read_bytes() == b"unsent data"
    assert "kept: config" in removed.stdout

    again = install(root, "--uninstall")
    assert "nothing to do: not installed" in again.stdout

    purged = install(root, "--uninstall", "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not (root / "etc/bess-edge").exists()
    assert not (root / "var/lib/bess-edge").exists()


def _torch_line(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if "torch==" in line and "pip install" in line]
    assert len(lines) == 1, stdout
    pin = re.search(r'"torch==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text())
    assert pin and f"torch=={pin.group(1)}" in lines[0].split()
    assert "--no-deps" in lines[0] and "--extra-index-url" not in lines[0]
    return lines[0]


def test_dry_run_changes_nothing_and_takes_torch_from_one_source_then_checks_it_is_the_cpu_build(
    root: Path, tmp_path: Path
) -> None:
    result = install(root, "--dry-run", "--python", sys.executable)
    assert result.returncode == 0, result.stderr
    assert not root.exists()
    line = _torch_line(result.stdout)
    assert "--index-url" not in line and "--find-links" not in line  # pip's configured index
    after = result.stdout.split(line, 1)[1]
    assert "torch.version.cuda" in after.splitlines()[1]  # the CPU-build check comes right after
    assert "requirements.lock" in result.stdout

    named = install(root, "--dry-run", "--python", sys.executable, "--torch-index", "file:///srv/cpu-index")
    assert "--index-url file:///srv/cpu-index" in _torch_line(named.stdout)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    local = install(root, "--dry-run", "--python", sys.executable, "--wheels", str(wheels))
    assert f"--no-index --find-links {wheels}" in _torch_line(local.stdout)


def _fake_cuda_torch_wheel(directory: Path, version: str) -> None:
    """A wheel named like the pinned torch whose `torch.version.cuda` is set, as the CUDA build's is."""
    name = f"torch-{version}"
    files = {
        "torch/__init__.py": "from torch import version\n",
        "torch/version.py": f"__version__ = '{version}'\ncuda = '12.8'\n",
        f"{name}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
        f"{name}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in files) + f"{name}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(directory / f"{name}-py3-none-any.whl", "w") as wheel:
        for path, text in {**files, f"{name}.dist-info/RECORD": record}.items():
            wheel.writestr(path, text)


def test_when_the_torch_installed_is_a_cuda_build_then_install_stops_and_says_how_to_get_the_cpu_one(
    root: Path, tmp_path: Path
) -> None:
    pin = re.search(r'"torch==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text())
    assert pin
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _fake_cuda_torch_wheel(wheels, pin.group(1))
    result = install(root, "--wheels", str(wheels), "--python", sys.executable, env=offline_env())
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is not the CPU-only build" in result.stderr and "--torch-index" in result.stderr
    assert "installed: bess-edge into" not in result.stdout
    assert not list((root / "opt/bess-edge/venv").glob("lib/python*/site-packages/pydantic"))  # stopped there
    assert not (root / "opt/bess-edge/venv/.bess-edge-source").exists()


def offline_env() -> dict[str, str]:
    """No pip configuration from this machine (find-links, extra indexes): only what install.sh passes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_NO_INPUT"] = "1"
    return env


def test_when_torch_is_not_in_the_wheel_dir_then_install_fails_clearly_and_offline(root: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    result = install(root, "--wheels", str(wheels), "--python", sys.executable, env=offline_env())
    assert result.returncode == 1
    assert "pip failed; the virtualenv is incomplete" in result.stderr
    assert "installed: bess-edge into" not in result.stdout
    assert not (root / "opt/bess-edge/venv/.bess-edge-source").exists()  # the next run rebuilds


@pytest.mark.parametrize(
    "args",
    [["--bogus"], ["--purge"], ["--prefix", "relative/dir"], ["--etc", "/"], ["--wheels", "/nonexistent-dir"]],
)
def test_when_usage_is_wrong_then_exit_2_and_nothing_written(root: Path, args: list[str]) -> None:
    result = install(root, *args)
    assert result.returncode == 2
    assert result.stderr.strip()
    assert not root.exists()


def test_when_libgomp_is_missing_then_install_stops_first_and_says_how_to_install_it(
    root: Path, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ldconfig = bin_dir / "ldconfig"  # an OS whose linker cache lists no libgomp.so.1
    ldconfig.write_text(
        "#!/bin/sh\necho '1 libs found in cache'\necho '\tlibc.so.6 (libc6,x86-64) => /lib/libc.so.6'\n"
    )
    ldconfig.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = install(root, "--python", sys.executable, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "libgomp.so.1 is missing" in result.stderr and "apt install libgomp1" in result.stderr
    assert not root.exists()  # checked before anything was written

    present = install(root, "--dry-run", "--python", sys.executable)  # this machine's real linker cache
    assert present.returncode == 0 and "unchanged: libgomp1" in present.stdout
