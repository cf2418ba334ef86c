"""Buffer contract: every buffer implementation must pass these (parametrize `make_buffer` to add one)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.buffer import DiskBuffer
from tests.conftest import REPO_ROOT

MakeBuffer = Callable[..., DiskBuffer]


@pytest.fixture(params=["full", "normal"])
def sync(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_buffer(sync: str, tmp_path: Path) -> MakeBuffer:
    def make(max_bytes: int = 16 * 1024 * 1024, wall_ns: Callable[[], int] | None = None) -> DiskBuffer:
        kwargs = {"wall_ns": wall_ns} if wall_ns else {}
        return DiskBuffer(tmp_path / "buf", max_bytes=max_bytes, sync=sync, **kwargs)

    return make


def _plain(start: int, count: int) -> list[str]:
    return [f"m,site=t v={i}i {i}" for i in range(start, start + count)]


def test_when_lines_appended_then_peek_returns_oldest_first_up_to_limit(make_buffer: MakeBuffer) -> None:
    buf = make_buffer()
    buf.append(_plain(0, 3))
    buf.append(_plain(3, 4))
    batch = buf.peek(5)
    assert batch.lines == _plain(0, 5)
    assert len(batch.ids) == 5
    assert buf.depth() == 7
    buf.close()


def test_when_batch_acked_then_only_its_lines_are_gone(make_buffer: MakeBuffer) -> None:
    buf = make_buffer()
    buf.append(_plain(0, 4))
    batch = buf.peek(3)
    buf.append(_plain(4, 2))  # arrives while the batch is in flight
    buf.ack(batch)
    assert buf.peek(100).lines == _plain(3, 3)
    buf.ack(batch)  # idempotent
    assert buf.depth() == 3
    assert buf.stats().acked == 3
    buf.close()


def test_when_empty_then_peek_is_empty_and_age_zero(make_buffer: MakeBuffer) -> None:
    buf = make_buffer()
    assert buf.peek(10).lines == []
    assert buf.depth() == 0
    assert buf.oldest_age_s(10**18) == 0.0
    buf.close()


def test_when_reopened_then_unacked_lines_are_still_there_in_order(make_buffer: MakeBuffer) -> None:
    buf = make_buffer()
    buf.append(_plain(0, 10))
    buf.ack(buf.peek(4))
    buf.close()
    again = make_buffer()
    assert again.peek(100).lines == _plain(4, 6)
    again.append(_plain(10, 1))
    assert again.peek(100).lines == _plain(4, 7)
    again.close()


def test_when_process_killed_after_append_then_lines_survive(
    make_buffer: MakeBuffer, sync: str, tmp_path: Path
) -> None:
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from collector.buffer import DiskBuffer
        buf = DiskBuffer(Path({str(tmp_path / "buf")!r}), max_bytes=16 * 1024 * 1024, sync={sync!r})
        buf.append(["m v=1i 1", "m v=2i 2"])
        buf.append(["m v=3i 3"])
        os._exit(0)  # no close(), no checkpoint: like SIGKILL right after append returned
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    buf = make_buffer()
    assert buf.peek(10).lines == ["m v=1i 1", "m v=2i 2", "m v=3i 3"]
    buf.close()


def test_when_oldest_line_waits_then_age_counts_from_its_append(make_buffer: MakeBuffer) -> None:
    now = [1_000_000_000_000]
    buf = make_buffer(wall_ns=lambda: now[0])
    buf.append(_plain(0, 1))
    now[0] += 5_000_000_000
    buf.append(_plain(1, 1))
    assert buf.oldest_age_s(now[0] + 2_000_000_000) == pytest.approx(7.0)
    buf.close()


def _disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.name.startswith("buffer.db"))


def test_when_limit_reached_then_oldest_dropped_counted_and_file_bounded(
    make_buffer: MakeBuffer, tmp_path: Path
) -> None:
    limit = 512 * 1024
    buf = make_buffer(max_bytes=limit)
    pad = "x" * 80
    total = 0
    peak = 0
    for _ in range(40):  # ~1.3 MB of lines into a 0.5 MB buffer
        buf.append([f'm,site=t v={total + i}i,p="{pad}" {total + i}' for i in range(300)])
        total += 300
        peak = max(peak, _disk_bytes(tmp_path / "buf"))
    assert peak <= limit
    stats = buf.stats()
    assert stats.dropped > 0
    assert stats.dropped + stats.depth == total
    kept = buf.peek(stats.depth).lines
    numbers = [int(line.rsplit(" ", 1)[1]) for line in kept]
    assert numbers == list(range(total - len(numbers), total))  # the newest survive, in order, no holes
    assert sum(len(line) for line in kept) > limit / 4, "the policy drops what it must, not everything"
    buf.close()


def test_when_one_append_exceeds_the_whole_limit_then_it_is_dropped_and_the_rest_kept(
    make_buffer: MakeBuffer,
) -> None:
    buf = make_buffer(max_bytes=256 * 1024)
    buf.append(_plain(0, 10))
    buf.append([f'm v={i}i,p="{"z" * 1000}" {i}' for i in range(400)])  # ~400 KB in one transaction
    assert buf.peek(100).lines == _plain(0, 10)
    assert buf.stats().dropped == 400
    buf.append(_plain(10, 1))
    assert buf.depth() == 11
    buf.close()


def test_when_limit_lowered_on_restart_then_file_shrinks_to_it(make_buffer: MakeBuffer, tmp_path: Path) -> None:
    buf = make_buffer(max_bytes=4 * 1024 * 1024)
    for i in range(30):
        buf.append([f'm v={i * 100 + j}i,p="{"y" * 100}" {i * 100 + j}' for j in range(100)])
    buf.close()
    small = make_buffer(max_bytes=256 * 1024)
    assert _disk_bytes(tmp_path / "buf") <= 256 * 1024
    lines = small.peek(10**6).lines
    assert lines and lines[-1].endswith(" 2999")
    small.close()


def test_when_database_file_is_garbage_then_moved_aside_and_fresh_buffer_works(
    make_buffer: MakeBuffer, tmp_path: Path
) -> None:
    (tmp_path / "buf").mkdir()
    (tmp_path / "buf" / "buffer.db").write_bytes(b"this is not an sqlite database" * 100)
    buf = make_buffer()
    buf.append(["m v=1i 1"])
    assert buf.peek(10).lines == ["m v=1i 1"]
    aside = [p.name for p in (tmp_path / "buf").iterdir() if ".corrupt-" in p.name]
    assert aside, "the corrupt file must be kept for inspection"
    buf.close()


def test_when_limit_below_minimum_then_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least"):
        DiskBuffer(tmp_path / "b", max_bytes=1000)


def test_when_a_page_inside_the_file_is_damaged_then_detected_at_open_and_moved_aside(
    make_buffer: MakeBuffer, tmp_path: Path
) -> None:
    buf = make_buffer()
    for i in range(20):
        buf.append([f'm v={i * 50 + j}i,p="{"q" * 200}" {i * 50 + j}' for j in range(50)])
    buf.close()
    path = tmp_path / "buf" / "buffer.db"
    data = bytearray(path.read_bytes())
    data[8192:12288] = b"\xa5" * 4096  # the third page: b-tree content, not the header
    path.write_bytes(bytes(data))
    again = make_buffer()
    assert again.depth() == 0, "a fresh buffer after the damaged one was set aside"
    again.append(["m v=1i 1"])
    assert again.peek(5).lines == ["m v=1i 1"]
    assert [p for p in (tmp_path / "buf").iterdir() if p.name.startswith("buffer.db.corrupt-")]
    again.close()
