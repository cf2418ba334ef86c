"""The shared start-up of `predict` and `score`: config and the optional time option, exit 2 before any I/O."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import pytest

from forecaster.commands import predict, score
from forecaster.commands.common import load_with_time

CONFIG = """
site = "shop"
[influx]
url = "http://127.0.0.1:9"
"""


# each command with its time option and its other arguments
COMMANDS = [(predict, "at", {"task": None, "run": "live"}), (score, "end", {"run": "live"})]


def _config(tmp_path: Path, body: str = CONFIG) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body)
    return path


def test_when_time_given_then_settings_and_utc_ns(tmp_path: Path) -> None:
    loaded = load_with_time(argparse.Namespace(config=_config(tmp_path), at="2026-01-04T12:00:00"), "at")
    assert loaded is not None
    settings, at_ns = loaded
    assert settings.site == "shop"
    assert at_ns == 1_767_528_000 * 1_000_000_000  # a time without offset is UTC


def test_when_time_has_offset_then_converted_to_utc(tmp_path: Path) -> None:
    loaded = load_with_time(argparse.Namespace(config=_config(tmp_path), end="2026-01-04T14:00:00+02:00"), "end")
    assert loaded is not None
    assert loaded[1] == 1_767_528_000 * 1_000_000_000


def test_when_time_not_given_then_none(tmp_path: Path) -> None:
    loaded = load_with_time(argparse.Namespace(config=_config(tmp_path), end=None), "end")
    assert loaded is not None
    assert loaded[1] is None


@pytest.mark.parametrize(("command", "option", "extra"), COMMANDS)
def test_when_time_malformed_then_exit_2_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: ModuleType, option: str, extra: dict[str, object]
) -> None:
    args = argparse.Namespace(config=_config(tmp_path), **{option: "yesterday"}, **extra)
    assert command.main(args) == 2
    assert f"--{option}: not an ISO-8601 time: 'yesterday'" in capsys.readouterr().out


@pytest.mark.parametrize(("command", "option", "extra"), COMMANDS)
def test_when_config_bad_then_exit_2_with_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: ModuleType, option: str, extra: dict[str, object]
) -> None:
    args = argparse.Namespace(config=_config(tmp_path, "[influx]\nurll = 1\n"), **{option: None}, **extra)
    assert command.main(args) == 2
    assert "influx.urll: unknown key" in capsys.readouterr().err


def test_when_predict_task_unknown_then_exit_2_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(config=_config(tmp_path), at=None, task=["nope"], run="live")
    assert predict.main(args) == 2
    assert "unknown task(s) ['nope']" in capsys.readouterr().out
