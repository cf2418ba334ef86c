"""Dead-letter file and the `dead-letters` command: list, show, replay (through the buffer), purge."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from collector.buffer import DiskBuffer
from collector.commands import dead_letters as command
from collector.deadletters import DeadLetter, DeadLetters


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(f'[collector]\nbuffer_dir = "{tmp_path / "buf"}"\nbuffer_max_mb = 1\n')
    return path


def _fill(tmp_path: Path) -> DeadLetters:
    dead = DeadLetters(tmp_path / "buf")
    dead.add(
        [
            DeadLetter(
                1_000_000_000,
                400,
                'partial write: field type conflict: input field "v" on "m" dropped=1',
                ['m v="a" 1'],
            ),
            DeadLetter(
                2_000_000_000,
                400,
                'partial write: field type conflict: input field "w" on "n" dropped=2',
                ['n w="b" 2', 'n w="c" 3'],
            ),
            DeadLetter(3_000_000_000, 413, "Request Entity Too Large", ["big 4"]),
        ]
    )
    return dead


def _cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], action: str, *index: int) -> tuple[int, str, str]:
    args = argparse.Namespace(config=_config(tmp_path), action=action, index=list(index) or None)
    code = command.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_when_entries_added_then_listed_with_counts_per_reason_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(tmp_path)
    code, out, _ = _cli(tmp_path, capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"3 entries, 4 lines set aside in {tmp_path / 'buf' / 'dead_letters.jsonl'}"
    assert "     3 lines  HTTP 400: partial write: field type conflict" in lines[1]
    assert "     1 lines  HTTP 413: Request Entity Too Large" in lines[2]


def test_when_show_with_index_then_only_that_entry_and_its_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(tmp_path)
    code, out, _ = _cli(tmp_path, capsys, "show", 1)
    assert code == 0
    assert out.splitlines() == [
        '[1] 1970-01-01T00:00:02.000Z HTTP 400: partial write: field type conflict: input field "w" on "n" dropped=2',
        '    n w="b" 2',
        '    n w="c" 3',
    ]


def test_when_replayed_then_lines_are_in_the_buffer_and_entries_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = _fill(tmp_path)
    code, out, _ = _cli(tmp_path, capsys, "replay", 0, 2)
    assert code == 0
    assert out.startswith("replayed 2 entries (2 lines) into the buffer")
    buffer = DiskBuffer(tmp_path / "buf", max_bytes=1024 * 1024)
    assert buffer.peek(10).lines == ['m v="a" 1', "big 4"]
    buffer.close()
    assert [e.lines for e in dead.entries()] == [['n w="b" 2', 'n w="c" 3']]


def test_when_purged_then_entries_deleted_for_good(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = _fill(tmp_path)
    assert _cli(tmp_path, capsys, "purge", 1)[0] == 0
    assert [e.time_ns for e in dead.entries()] == [1_000_000_000, 3_000_000_000]
    code, out, _ = _cli(tmp_path, capsys, "purge")
    assert (code, out.strip()) == (0, "purged 2 entries (2 lines)")
    assert dead.entries() == []


def test_when_index_unknown_then_exit_2_and_nothing_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = _fill(tmp_path)
    code, _, err = _cli(tmp_path, capsys, "purge", 7)
    assert code == 2
    assert err.strip() == "--index 7: no such entry (there are 3)"
    assert len(dead.entries()) == 3


def test_when_a_line_of_the_file_is_torn_then_the_rest_is_still_read(tmp_path: Path) -> None:
    dead = _fill(tmp_path)
    with dead.path.open("a") as out:
        out.write('{"time_ns": 5, "status": 400, "lines": ["x 1"')  # a crash mid-append
    assert len(dead.entries()) == 3
    dead.add([DeadLetter(6, 400, "bad", ["y 2"])])
    assert [e.lines for e in dead.entries()][-1] == ["y 2"]
