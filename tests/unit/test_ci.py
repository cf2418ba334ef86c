"""CI runs what the brief asks, in the order that fails fast: ruff check, ruff format --check, mypy, then the
suite; `.ci/run` calls exactly the README's test command."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _dry_run(target: str) -> list[str]:
    """The commands `make -n <target>` would run (nothing is executed), with a venv path that cannot exist."""
    done = subprocess.run(
        ["make", "-n", target, "VENV=/nonexistent-venv"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_lints_and_typechecks_before_the_suite() -> None:
    lines = _dry_run("test")

    def first(pattern: str) -> int:
        found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert found, f"`make test` never runs {pattern!r}:\n" + "\n".join(lines)
        return found[0]

    order = [
        first(r"/bin/ruff check "),
        first(r"/bin/ruff format --check "),
        first(r"/bin/mypy\b"),
        first(r"-m pytest"),
    ]
    assert order == sorted(order)
    checked = lines[order[0]].split("ruff check ", 1)[1].split()
    assert {"bess_common", "collector", "forecaster", "tests", "bench", "deploy"} <= set(checked)


def test_mypy_checks_every_package_and_the_tests() -> None:
    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    packages = re.search(r"^packages = \[(.*)\]$", text, re.M)
    assert packages
    assert {"bess_common", "collector", "forecaster", "bench", "deploy", "tests"} <= set(
        re.findall(r'"([^"]+)"', packages.group(1))
    )


def test_ci_runs_the_readmes_test_command() -> None:
    script = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in script.splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]
    assert "\nmake test " in (REPO_ROOT / "README.md").read_text(encoding="utf-8")


# Package registries' host names (as regular expressions, so this file does not name them itself).
REGISTRY_HOSTS = re.compile(
    r"pypi\.org|pythonhosted\.org|download\.pytorch\.org|registry\.npmjs\.org|deb\.debian\.org|"
    r"archive\.ubuntu\.com|conda\.anaconda\.org"
)


@pytest.mark.skipif(shutil.which("git") is None or not (REPO_ROOT / ".git").exists(), reason="not a git checkout")
def test_no_file_names_a_package_registry_host() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True, timeout=60
    ).stdout.split(b"\0")
    found = []
    for name in filter(None, tracked):
        path = REPO_ROOT / name.decode()
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace")
            found += [f"{name.decode()}: {m.group(0)}" for m in REGISTRY_HOSTS.finditer(text)]
    assert found == []
