"""One progress reporter for long forecaster work (backtest cut-offs, fine-tune steps)."""

from __future__ import annotations

from typing import Any

import pytest

from forecaster.progress import Progress
from forecaster.windows import NS, iso


class Lines:
    """Collects what Progress logs."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


def test_when_work_advances_then_the_tty_line_refreshes_and_the_log_gets_a_line_per_tenth(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = Lines()
    progress = Progress("backtest cut-off", 20, lines, event="backtest_progress", keys=("cutoff", "cutoffs"), tty=True)
    for done in range(1, 21):
        progress.step(done)
    err = capsys.readouterr().err
    assert err.count("\r") == 20 and "backtest cut-off 20/20" in err and err.endswith("\n")
    assert [f["cutoff"] for _e, f in lines.events] == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    assert all(e == "backtest_progress" and f["cutoffs"] == 20 for e, f in lines.events)


def test_when_extra_fields_are_given_then_line_and_log_carry_them(capsys: pytest.CaptureFixture[str]) -> None:
    lines = Lines()
    progress = Progress("fine-tune step", 0, lines, event="finetune_progress", keys=("step", "steps"), tty=True)
    progress.step(5, 10, loss=0.25)
    assert "fine-tune step 5/10  loss 0.25" in capsys.readouterr().err
    assert lines.events == [
        ("finetune_progress", {"step": 5, "steps": 10, "eta_s": lines.events[0][1]["eta_s"], "loss": 0.25})
    ]


def test_iso_is_one_format() -> None:
    assert iso(1_767_225_600 * NS + 999_999_999) == "2026-01-01T00:00:00Z"
