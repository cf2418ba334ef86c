"""Writer status handling against a tiny scripted HTTP server (a fake InfluxDB for this unit test only)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bess_common.config import InfluxSettings
from bess_common.influx import InfluxClient
from collector.buffer import DiskBuffer
from collector.deadletters import DeadLetters
from collector.sink import Writer
from deploy.localservices import free_port

Reply = tuple[int, str, dict[str, str]]


@dataclass
class FakeInflux:
    """Answers /write with `decide(lines)`; 'stores' the lines of 2xx answers and good lines of 400s."""

    decide: Callable[[list[str]], Reply]
    stored: list[str] = field(default_factory=list)
    requests: list[list[str]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    url: str = ""


def _handler(fake: FakeInflux) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, body: str, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(size).decode()
            url = urlsplit(self.path)
            if url.path == "/query":
                fake.queries.append(parse_qs(url.query)["q"][0])
                self._answer(200, '{"results":[{"statement_id":0}]}', {})
                return
            lines = body.splitlines()
            fake.requests.append(lines)
            status, text, headers = fake.decide(lines)
            if status < 300:
                fake.stored.extend(lines)
            elif status == 400:
                fake.stored.extend(line for line in lines if "bad" not in line)
            self._answer(status, text, headers)

    return Handler


@pytest.fixture
def fake() -> Iterator[FakeInflux]:
    state = FakeInflux(decide=lambda lines: (204, "", {}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))  # the OS picks the port
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class Rig:
    writer: Writer
    buffer: DiskBuffer
    dead: DeadLetters
    clock: list[float]


def _rig(tmp_path: Path, url: str, batch_max_lines: int = 100, retry_max_s: float = 8.0) -> Rig:
    clock = [1000.0]
    buffer = DiskBuffer(tmp_path / "buf", max_bytes=4 * 1024 * 1024)
    dead = DeadLetters(tmp_path / "buf")
    client = InfluxClient(InfluxSettings(url=url, database="bess", timeout_s=2.0))
    writer = Writer(
        buffer,
        client,
        dead,
        batch_max_lines=batch_max_lines,
        retry_max_s=retry_max_s,
        flush_interval_s=1.0,
        retry_min_s=0.5,
        clock=lambda: clock[0],
        rng=lambda: 1.0,
        sleep=lambda s: clock.__setitem__(0, clock[0] + s),
    )
    return Rig(writer, buffer, dead, clock)


def _lines(n: int, start: int = 0) -> list[str]:
    return [f"m,site=t v={i}i {i}" for i in range(start, start + n)]


def test_when_influx_accepts_then_lines_written_in_order_and_acked(fake: FakeInflux, tmp_path: Path) -> None:
    rig = _rig(tmp_path, fake.url)
    rig.buffer.append(_lines(5))
    assert rig.writer.flush_once() == 5
    assert fake.stored == _lines(5)
    assert rig.buffer.depth() == 0
    assert rig.writer.stats().written == 5


def test_when_one_line_is_bad_then_it_alone_is_dead_lettered_and_rest_written(fake: FakeInflux, tmp_path: Path) -> None:
    def decide(lines: list[str]) -> Reply:
        bad = [line for line in lines if "bad" in line]
        if not bad:
            return 204, "", {}
        reason = f'partial write: field type conflict: input field "v" on measurement "m" dropped={len(bad)}'
        return 400, '{"error":"' + reason.replace('"', '\\"') + '"}', {}

    fake.decide = decide
    rig = _rig(tmp_path, fake.url)
    lines = _lines(20)
    lines[13] = 'm,site=t v="bad" 13'
    rig.buffer.append(lines)
    assert rig.writer.flush_once() == 19
    assert rig.buffer.depth() == 0
    entries = rig.dead.entries()
    assert [e.lines for e in entries] == [['m,site=t v="bad" 13']]
    assert entries[0].status == 400
    assert "field type conflict" in entries[0].reason
    assert sorted(set(fake.stored)) == sorted(set(lines) - {lines[13]})
    assert rig.writer.stats().rejected == 1


def test_when_whole_batch_is_bad_then_one_entry_without_bisecting(fake: FakeInflux, tmp_path: Path) -> None:
    fake.decide = lambda lines: (400, f'{{"error":"partial write: unable to parse dropped={len(lines)}"}}', {})
    rig = _rig(tmp_path, fake.url)
    rig.buffer.append([f"bad {i}" for i in range(8)])
    assert rig.writer.flush_once() == 0
    assert len(fake.requests) == 1
    assert [len(e.lines) for e in rig.dead.entries()] == [8]
    assert rig.buffer.depth() == 0


def test_when_batch_too_large_then_split_until_it_fits(fake: FakeInflux, tmp_path: Path) -> None:
    fake.decide = lambda lines: (413, '{"error":"Request Entity Too Large"}', {}) if len(lines) > 3 else (204, "", {})
    rig = _rig(tmp_path, fake.url)
    rig.buffer.append(_lines(10))
    assert rig.writer.flush_once() == 10
    assert fake.stored == _lines(10)
    assert rig.dead.entries() == []


def test_when_429_with_retry_after_then_kept_and_next_try_waits_at_least_that(fake: FakeInflux, tmp_path: Path) -> None:
    fake.decide = lambda lines: (429, '{"error":"slow down"}', {"Retry-After": "7"})
    rig = _rig(tmp_path, fake.url)
    rig.buffer.append(_lines(3))
    assert rig.writer.flush_once() == 0
    assert rig.buffer.depth() == 3
    assert rig.writer.next_delay_s() >= 7.0


def test_when_server_errors_repeat_then_backoff_doubles_up_to_cap_and_recovers(
    fake: FakeInflux, tmp_path: Path
) -> None:
    fake.decide = lambda lines: (500, '{"error":"internal"}', {})
    rig = _rig(tmp_path, fake.url, retry_max_s=4.0)
    rig.buffer.append(_lines(3))
    delays = []
    for _ in range(6):
        assert rig.writer.flush_once() == 0
        delays.append(rig.writer.next_delay_s())
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # rng pinned to 1.0: the jitter's upper bound
    assert not rig.writer.stats().up
    fake.decide = lambda lines: (204, "", {})
    assert rig.writer.flush_once() == 3
    assert rig.writer.stats().up
    assert rig.writer.next_delay_s() == 1.0


def test_when_credentials_refused_then_data_kept_and_counted(fake: FakeInflux, tmp_path: Path) -> None:
    fake.decide = lambda lines: (401, '{"error":"authorization failed"}', {})
    rig = _rig(tmp_path, fake.url)
    rig.buffer.append(_lines(2))
    assert rig.writer.flush_once() == 0
    assert rig.buffer.depth() == 2
    assert rig.writer.stats().failures == {"auth": 1}


def test_when_database_missing_then_created_and_written(fake: FakeInflux, tmp_path: Path) -> None:
    created: list[bool] = []

    def decide(lines: list[str]) -> Reply:
        if any("CREATE DATABASE" in q for q in fake.queries):
            created.append(True)
            return 204, "", {}
        return 404, '{"error":"database not found: \\"bess\\""}', {}

    fake.decide = decide
    rig = _rig(tmp_path, fake.url)
    rig.buffer.append(_lines(2))
    assert rig.writer.flush_once() == 2
    assert fake.queries == ['CREATE DATABASE "bess"']
    assert fake.stored == _lines(2)


def test_when_nothing_listens_then_lines_stay_in_buffer(tmp_path: Path) -> None:
    rig = _rig(tmp_path, f"http://127.0.0.1:{free_port()}")
    rig.buffer.append(_lines(4))
    assert rig.writer.flush_once() == 0
    assert rig.buffer.peek(10).lines == _lines(4)
    assert rig.writer.stats().failures == {"RetryableError": 1}


def test_when_draining_against_a_down_server_then_gives_up_at_the_deadline(fake: FakeInflux, tmp_path: Path) -> None:
    fake.decide = lambda lines: (503, '{"error":"unavailable"}', {})
    rig = _rig(tmp_path, fake.url)
    rig.buffer.append(_lines(4))
    start = rig.clock[0]
    assert rig.writer.drain(5.0) is False
    assert rig.clock[0] - start <= 5.0 + 1e-6
    assert rig.buffer.depth() == 4


def test_when_draining_with_backlog_then_every_batch_is_written(fake: FakeInflux, tmp_path: Path) -> None:
    rig = _rig(tmp_path, fake.url, batch_max_lines=7)
    rig.buffer.append(_lines(30))
    assert rig.writer.drain(5.0) is True
    assert fake.stored == _lines(30)
    assert max(len(r) for r in fake.requests) == 7


def test_when_database_stays_missing_then_kept_and_logged_once_per_outage(
    fake: FakeInflux, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.decide = lambda lines: (404, '{"error":"database not found: \\"bess\\""}', {})
    rig = _rig(tmp_path, fake.url)
    rig.buffer.append(_lines(2))
    for _ in range(4):
        assert rig.writer.flush_once() == 0
    out = capsys.readouterr().out
    assert out.count("influx_database_missing") == 1
    assert out.count("influx_down") == 1
    assert rig.buffer.depth() == 2
    assert rig.writer.stats().failures == {"DatabaseNotFound": 4}


class RecordingBuffer(DiskBuffer):
    """A DiskBuffer that signals each read-ahead (peek after an id) as it happens."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.read_ahead: dict[int, threading.Event] = {}

    def peek(self, max_lines: int, after_id: int | None = None):  # type: ignore[no-untyped-def]
        batch = super().peek(max_lines, after_id)
        if after_id is not None:
            self.read_ahead.setdefault(after_id, threading.Event()).set()
        return batch


def test_when_a_backlog_drains_then_the_next_batch_is_read_while_the_write_is_in_flight(
    fake: FakeInflux, tmp_path: Path
) -> None:
    rig = _rig(tmp_path, fake.url, batch_max_lines=5)
    buffer = RecordingBuffer(tmp_path / "rec", max_bytes=4 * 1024 * 1024)
    client = InfluxClient(InfluxSettings(url=fake.url, database="bess", timeout_s=2.0))
    writer = Writer(buffer, client, rig.dead, batch_max_lines=5)
    buffer.append(_lines(23))
    first_id = buffer.peek(1).ids[0]
    overlapped: list[bool] = []

    def decide(lines: list[str]) -> Reply:
        if len(lines) == 5:  # a full batch: the writer must already be reading the one behind it
            last_id = first_id + int(lines[-1].rsplit(" ", 1)[1])
            event = buffer.read_ahead.setdefault(last_id, threading.Event())
            overlapped.append(event.wait(5.0))
        return 204, "", {}

    fake.decide = decide
    assert writer.flush_backlog() == 23
    assert fake.stored == _lines(23)
    assert overlapped == [True, True, True, True]
    assert buffer.depth() == 0


def test_when_influx_fails_mid_backlog_then_written_batches_are_acked_and_the_rest_kept(
    fake: FakeInflux, tmp_path: Path
) -> None:
    fake.decide = lambda lines: (503, '{"error":"unavailable"}', {}) if lines[0].endswith(" 14") else (204, "", {})
    rig = _rig(tmp_path, fake.url, batch_max_lines=7)
    rig.buffer.append(_lines(30))
    assert rig.writer.flush_backlog() == 14
    assert fake.stored == _lines(14)
    assert rig.buffer.peek(100).lines == _lines(16, start=14)
    assert not rig.writer.stats().up
    fake.decide = lambda lines: (204, "", {})
    assert rig.writer.drain(5.0) is True
    assert fake.stored == _lines(30)


def test_when_a_bad_line_sits_in_a_backlog_then_only_it_is_set_aside(fake: FakeInflux, tmp_path: Path) -> None:
    def decide(lines: list[str]) -> Reply:
        bad = [line for line in lines if "bad" in line]
        return (400, f'{{"error":"partial write: unable to parse dropped={len(bad)}"}}', {}) if bad else (204, "", {})

    fake.decide = decide
    rig = _rig(tmp_path, fake.url, batch_max_lines=6)
    lines = _lines(20)
    lines[9] = "m,site=t v=bad 9"
    rig.buffer.append(lines)
    assert rig.writer.flush_backlog() == 19
    assert [e.lines for e in rig.dead.entries()] == [["m,site=t v=bad 9"]]
    assert sorted(set(fake.stored)) == sorted(set(lines) - {lines[9]})
    assert rig.buffer.depth() == 0


def test_when_the_batch_budget_is_spent_then_the_rest_waits_for_the_next_call(fake: FakeInflux, tmp_path: Path) -> None:
    rig = _rig(tmp_path, fake.url, batch_max_lines=4)
    rig.buffer.append(_lines(20))
    assert rig.writer.flush_backlog(max_batches=2) == 8
    assert rig.buffer.peek(100).lines == _lines(12, start=8)
    assert rig.writer.next_delay_s() == 0.0  # backlog left: go again at once
    assert rig.writer.flush_backlog() == 12
    assert rig.writer.next_delay_s() == 1.0
    assert fake.stored == _lines(20)
