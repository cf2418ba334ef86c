"""`bess-forecaster check-config`: the shared sections and [forecaster], checked as the forecaster reads them,
while the collector's sections are left to `bess-collector check-config` (and the reverse)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

BAD_FORECASTER = """
site = "shop"
[gx]
host = "127.0.0.1"
[forecaster]
num_threads = "many"
registry_dir = 5
"""

BAD_COLLECTOR = """
site = "shop"
[collector]
interval_s = -1
"""


def _run(service: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", service, "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO_ROOT,
    )


def test_when_the_forecaster_section_is_bad_then_the_forecaster_lists_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(BAD_FORECASTER)
    result = _run("forecaster", config)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "forecaster.num_threads: Input should be a valid integer" in result.stderr
    assert "forecaster.registry_dir:" in result.stderr
    assert result.stdout == ""


def test_when_the_config_is_good_then_ok_with_the_tasks(tmp_path: Path) -> None:
    result = _run("forecaster", REPO_ROOT / "deploy" / "config.example.toml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: site=")
    assert "tasks=intraday(1mx60),day_ahead(15mx96)" in result.stdout


def test_each_service_checks_its_own_sections_and_accepts_the_others(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(BAD_COLLECTOR)
    forecaster = _run("forecaster", config)
    assert forecaster.returncode == 0, forecaster.stderr
    collector = _run("collector", config)
    assert collector.returncode == 2
    assert "collector.interval_s" in collector.stderr


def test_an_unknown_top_level_section_is_rejected_by_both(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('site = "shop"\n[forcaster]\nnum_threads = 2\n')
    for service in ("forecaster", "collector"):
        result = _run(service, config)
        assert result.returncode == 2, service
        assert "forcaster: unknown key" in result.stderr, service
