"""The report command end to end, and its HTML rendered by headless Debian chromium with every image loaded."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from forecaster.report import build_report
from forecaster.report.labels import STAND_IN_TAG
from forecaster.report.synthetic import SyntheticSpec, finetune_better_on_cycling, write_synthetic_run
from tests.conftest import run_cli

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LET_PAGE_SCRIPTS_RUN = "--virtual-time-budget=10000"  # the load event (and the page's image check) runs before dump
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)"
)


def chromium(args: list[str], user_data: Path) -> subprocess.CompletedProcess[str]:
    """Run headless chromium once with a throwaway profile."""
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={user_data}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A stand-in run rendered by `python -m forecaster report`; returns (out dir, stdout)."""
    base = tmp_path_factory.mktemp("report")
    spec: SyntheticSpec = finetune_better_on_cycling(seed=3, stand_in=True)
    spec = SyntheticSpec(
        seed=spec.seed,
        windows={"quiet": 12, "cycling": 12, "transition": 4},
        horizon_steps=30,
        gains=spec.gains,
        stand_in=True,
        fallback_windows=1,
    )
    run_dir = write_synthetic_run(base / "run", spec)
    out = base / "out"
    result = run_cli("forecaster", "report", "--run", str(run_dir), "--out", str(out), "--resamples", "300")
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_when_report_runs_then_it_prints_the_paths_of_every_file_it_wrote(report: tuple[Path, str]) -> None:
    _out, stdout = report
    printed = [Path(line.split(": ", 1)[1]) for line in stdout.splitlines() if ": " in line]
    names = {p.name for p in printed}
    assert {"report.html", "report.md", "metrics.csv", "comparisons.csv"} <= names
    assert sum(p.suffix == ".png" for p in printed) >= 4
    assert all(p.is_file() and p.stat().st_size > 0 for p in printed)


def test_when_markdown_is_written_then_every_linked_image_exists_beside_it(report: tuple[Path, str]) -> None:
    out, _ = report
    text = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 4
    assert all((out / link).is_file() for link in links)


def test_when_base_is_a_stand_in_then_both_pages_say_so_prominently(report: tuple[Path, str]) -> None:
    out, _ = report
    page, text = (out / "report.html").read_text(), (out / "report.md").read_text()
    assert page.count('class="banner"') >= 3
    assert text.count("> **WARNING:") >= 3
    assert STAND_IN_TAG in page and STAND_IN_TAG in text


@needs_chromium
def test_when_chromium_loads_the_page_then_every_image_has_loaded(report: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = report
    html = (out / "report.html").read_text()
    images = html.count("<img ")
    result = chromium([LET_PAGE_SCRIPTS_RUN, "--dump-dom", (out / "report.html").as_uri()], tmp_path / "profile")
    match = re.search(r'data-images-loaded="(\d+)/(\d+)"', result.stdout)
    assert match, f"page script did not report; chromium stderr tail: {result.stderr[-800:]}"
    assert int(match.group(2)) == images >= 4
    assert match.group(1) == match.group(2)


@needs_chromium
def test_when_the_html_file_travels_alone_then_it_still_shows_every_image(
    report: tuple[Path, str], tmp_path: Path
) -> None:
    alone = tmp_path / "mailed" / "report.html"
    alone.parent.mkdir()
    shutil.copy(report[0] / "report.html", alone)
    result = chromium([LET_PAGE_SCRIPTS_RUN, "--dump-dom", alone.as_uri()], tmp_path / "profile")
    match = re.search(r'data-images-loaded="(\d+)/(\d+)"', result.stdout)
    assert match and match.group(1) == match.group(2) and int(match.group(2)) >= 4


@needs_chromium
def test_when_chromium_screenshots_the_page_then_the_png_is_not_blank(report: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = report
    shot = tmp_path / "page.png"
    result = chromium(
        [f"--screenshot={shot}", "--window-size=1280,4000", (out / "report.html").as_uri()], tmp_path / "profile"
    )
    assert shot.is_file(), result.stderr[-800:]
    pixels = imread(shot)[..., :3]
    assert pixels.shape[0] >= 3000 and pixels.shape[1] >= 1200
    assert float(pixels.std()) > 0.05  # text, tables and plots, not a blank page
    rgb = (pixels.reshape(-1, 3) * 255).astype(np.uint32)
    colours = np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2])
    assert len(colours) > 50


@needs_chromium
def test_when_opened_at_1280x800_then_the_headline_and_verdict_are_above_the_fold_without_overflow(
    report: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = report
    page = (out / "report.html").as_uri()
    result = chromium([LET_PAGE_SCRIPTS_RUN, "--window-size=1280,800", "--hide-scrollbars", "--dump-dom", page],
                      tmp_path / "profile")  # fmt: skip
    match = re.search(r'data-layout="([^"]+)"', result.stdout)
    assert match, f"page script did not report; chromium stderr tail: {result.stderr[-800:]}"
    layout = json.loads(html.unescape(match.group(1)))
    assert layout["viewportWidth"] == 1280
    assert 0 < layout["headlineBottom"] <= 800, layout  # the skill figure is on the first screen
    assert layout["headlineBottom"] < layout["verdictBottom"] <= 800, layout  # and the verdict table below it
    assert layout["scrollWidth"] <= layout["clientWidth"], layout  # nothing wider than the page
    assert layout["scrollWidthOpen"] <= layout["clientWidth"], layout  # not even with every section open
    dom = result.stdout
    verdict = dom[dom.index('id="verdict"') :]
    assert all(f"<td>{regime}</td>" in verdict for regime in ("quiet", "cycling", "all windows"))
    cycling = verdict[verdict.index("<td>cycling</td>") :].split("</tr>")[0]
    assert "<td>better, MAE" in cycling  # the synthetic fine-tune is 40 % better on cycling
    assert dom.index('id="verdict"') < dom.index("<details")  # the details come after, collapsed
    assert "<details open" not in dom


def test_when_run_is_sparse_then_the_report_still_renders_and_says_what_it_cannot_assess(tmp_path: Path) -> None:
    spec = SyntheticSpec(
        seed=1,
        windows={"quiet": 4},
        horizon_steps=10,
        pairs=(("base", "target_only"), ("persistence", "none")),
        levels=(0.05, 0.5, 0.95),
    )
    paths = build_report(write_synthetic_run(tmp_path / "run", spec), tmp_path / "out", resamples=50)
    text = paths.markdown.read_text()
    assert "no fine-tuned forecasts" in text
    assert "cannot be checked" in text
    assert "80 % interval coverage is not available" in text
    assert all(p.is_file() for p in paths.images)
    assert paths.html.read_text().count("<img ") == len(paths.images)
