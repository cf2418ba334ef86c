"""Logging set-up: JSON lines off a TTY, and always to the stdout that is current when a line is logged."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from collector.common.logs import get_logger, setup_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_when_stdout_is_replaced_after_setup_then_lines_go_to_the_new_one(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stdout", first)
    setup_logging("info", "json")
    first.close()  # e.g. the capture of an earlier caller, gone
    second = io.StringIO()
    monkeypatch.setattr(sys, "stdout", second)
    get_logger("agent").warning("clock_jump", jump_s=-3600.0)
    entry = json.loads(second.getvalue().strip().splitlines()[-1])
    assert entry["event"] == "clock_jump" and entry["jump_s"] == -3600.0 and entry["level"] == "warning"


def test_when_level_is_warning_then_info_lines_are_dropped(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    setup_logging("warning", "json")
    get_logger("agent").info("tick")
    get_logger("agent").warning("stale", role="shunt")
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events == ["stale"]
