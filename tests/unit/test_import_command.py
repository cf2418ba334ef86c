"""The import command's argument checks and the progress display."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import pytest

from bess_common.errors import ConfigError
from collector.commands.importer import build_spec, configure
from collector.config import Settings
from collector.importers.report import ImportReport
from collector.importers.runner import ImportProgress


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(["--config", "c.toml", *argv])


def test_when_everything_is_wrong_then_every_problem_is_listed(tmp_path: Path) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_text('format = "vrm"\n')
    args = _args("--format", "ha", "--mapping", str(mapping), "--tz", "Nowhere/Land", str(tmp_path / "none.csv"))
    with pytest.raises(ConfigError) as err:
        build_spec(args, Settings())
    problems = err.value.problems
    assert "the mapping is for format 'vrm', not 'ha'" in problems
    assert "--format ha needs [[map]] entries (--mapping FILE or --map ...)" in problems
    assert f"{tmp_path / 'none.csv'}: input file not found" in problems
    assert any("unknown time zone 'Nowhere/Land'" in p for p in problems)


def test_when_site_is_not_given_then_the_mapping_site_then_the_config_site(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("")
    mapping = tmp_path / "m.toml"
    mapping.write_text('site = "from-mapping"\n')
    spec, _ = build_spec(_args("--format", "vrm", "--mapping", str(mapping), str(data)), Settings(site="cfg"))
    assert spec.site == "from-mapping"
    spec, _ = build_spec(_args("--format", "vrm", str(data)), Settings(site="cfg"))
    assert spec.site == "cfg"
    spec, _ = build_spec(_args("--format", "vrm", "--site", "flag", str(data)), Settings(site="cfg"))
    assert spec.site == "flag"


class _Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.events.append((event, kw))


def test_when_progress_ticks_then_the_tty_line_and_the_periodic_log_show_counts() -> None:
    now = [0.0]
    tty, log = io.StringIO(), _Log()
    progress = ImportProgress(ImportReport(), log, tty, log_every_s=15.0, clock=lambda: now[0])
    progress.rows = lambda: 4000
    progress.fraction = lambda: 0.25
    now[0] = 2.0
    progress.tick()
    assert tty.getvalue() == "\r 25.0% rows 4,000 (2,000/s)  written 0  bad 0\x1b[K"
    assert log.events == []  # not yet 15 s
    now[0] = 16.0
    progress.tick()
    assert log.events[-1] == (
        "import_progress",
        {"rows": 4000, "rows_per_s": 250, "written": 0, "bad_rows": 0, "files": 0, "pct": 25.0},
    )
    progress.done()
    assert tty.getvalue().endswith("\n")
