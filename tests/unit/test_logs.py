"""Logging set-up: JSON lines off a TTY, and always to the stdout that is current when a line is logged."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from bess_common.logs import RepeatCounter, get_logger, setup_logging


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


class _Quiet:
    """A logger that takes every call and keeps nothing (the stress test is about the counts)."""

    def warning(self, *args: object, **kw: object) -> None:
        pass


def test_when_many_threads_hit_and_read_a_repeat_counter_then_no_error_and_no_lost_count() -> None:
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows: races show at once
    try:
        counter = RepeatCounter(_Quiet(), period_s=0.0)
        writers, kinds, hits = 8, 40, 60
        errors: list[BaseException] = []
        done = threading.Event()

        def write(n: int) -> None:
            try:
                for i in range(hits):
                    for k in range(kinds):
                        counter.hit(f"kind_{(n * kinds + k + i) % (kinds * writers)}", "problem")
            except BaseException as exc:
                errors.append(exc)

        def read() -> None:
            while not done.is_set():
                try:
                    counter.count()
                except BaseException as exc:  # e.g. "dictionary changed size during iteration"
                    errors.append(exc)
                    return

        readers = [threading.Thread(target=read) for _ in range(4)]
        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for t in readers + threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        for t in readers:
            t.join()
    finally:
        sys.setswitchinterval(switch)
    assert errors == []
    assert sum(counter.count().values()) == writers * kinds * hits
