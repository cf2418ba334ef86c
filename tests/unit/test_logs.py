"""Logging set-up: JSON lines off a TTY, and always to the stdout that is current when a line is logged."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator

import pytest

from collector.common.logs import get_logger, setup_logging


@pytest.fixture
def new_stdout(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], io.StringIO]]:
    """Call it (inside the test: pytest re-installs its capture after fixtures) to get a fresh sys.stdout;
    the root logger's handlers and level are restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def swap() -> io.StringIO:
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        return out

    yield swap
    root.handlers[:] = handlers
    root.setLevel(level)


def test_when_stdout_is_replaced_after_setup_then_lines_go_to_the_new_one(
    new_stdout: Callable[[], io.StringIO],
) -> None:
    first = new_stdout()
    setup_logging("info", "json")
    first.close()  # e.g. the capture of an earlier caller, gone
    second = new_stdout()
    get_logger("agent").warning("clock_jump", jump_s=-3600.0)
    entry = json.loads(second.getvalue().strip().splitlines()[-1])
    assert entry["event"] == "clock_jump" and entry["jump_s"] == -3600.0 and entry["level"] == "warning"


def test_when_level_is_warning_then_info_lines_are_dropped(new_stdout: Callable[[], io.StringIO]) -> None:
    out = new_stdout()
    setup_logging("warning", "json")
    get_logger("agent").info("tick")
    get_logger("agent").warning("stale", role="shunt")
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events == ["stale"]
