"""The package layering of docs/architecture.md, read from the import statements of the code itself.

bess_common imports neither service; the collector and the forecaster never import each other; the pure
windowing core does not import the config; the development servers are not part of an installed package.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def imported_packages(path: Path) -> set[str]:
    """Top-level module names (and dotted names) imported anywhere in a file, lazy imports included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        for name in imported_packages(path):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(REPO_ROOT)} imports {name}")
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("bess_common", ("collector", "forecaster", "deploy", "bench", "tests")),
        ("collector", ("forecaster", "deploy", "bench", "tests")),
        ("forecaster", ("collector", "deploy", "bench", "tests")),
    ],
)
def test_packages_import_only_downwards(package: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(package, forbidden) == []


def test_windowing_core_does_not_read_the_config() -> None:
    names = imported_packages(REPO_ROOT / "forecaster" / "windows.py")
    assert not {n for n in names if n.startswith(("forecaster.config", "bess_common.config", "pydantic"))}


def test_development_servers_are_not_installed() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    installed = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert "bess_common*" in installed
    servers = [p.relative_to(REPO_ROOT) for p in REPO_ROOT.rglob("localservices.py") if ".venv" not in p.parts]
    assert servers == [Path("deploy/localservices.py")]
    assert not any(str(servers[0]).startswith(pattern.rstrip("*")) for pattern in installed)
