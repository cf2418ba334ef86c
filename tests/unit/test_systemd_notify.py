"""sd_notify and the watchdog against a real AF_UNIX datagram socket (no mocks)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bess_common import systemd


class NotifySocket:
    """A bound SOCK_DGRAM socket playing systemd's side; collects what the service sends."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(2.0)

    def receive(self) -> str:
        return self.sock.recv(4096).decode()

    def drain(self) -> list[str]:
        """Whatever is already queued, without waiting."""
        messages = []
        self.sock.setblocking(False)
        try:
            while True:
                messages.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            pass
        finally:
            self.sock.settimeout(2.0)
        return messages

    def receive_all(self, wait_s: float) -> list[str]:
        """Every datagram that arrives within wait_s."""
        messages = []
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                break
        return messages


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def notify_socket(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        clean_env.setenv("NOTIFY_SOCKET", str(path))
        yield NotifySocket(sock)


def test_when_ready_then_ready_1_arrives(notify_socket: NotifySocket) -> None:
    assert systemd.ready() is True
    assert notify_socket.receive() == "READY=1"


def test_when_ready_with_text_then_status_line_follows(notify_socket: NotifySocket) -> None:
    systemd.ready("collecting")
    assert notify_socket.receive() == "READY=1\nSTATUS=collecting"


def test_when_stopping_then_stopping_1_arrives(notify_socket: NotifySocket) -> None:
    systemd.stopping()
    assert notify_socket.receive() == "STOPPING=1"


def test_when_watchdog_ping_then_watchdog_1_arrives(notify_socket: NotifySocket) -> None:
    systemd.watchdog_ping()
    assert notify_socket.receive() == "WATCHDOG=1"


def test_when_status_and_extend_timeout_then_sent_verbatim(notify_socket: NotifySocket) -> None:
    systemd.status("buffer 12 lines")
    systemd.extend_timeout(90.5)
    assert notify_socket.receive() == "STATUS=buffer 12 lines"
    assert notify_socket.receive() == "EXTEND_TIMEOUT_USEC=90500000"


def test_when_notify_socket_is_abstract_then_datagram_arrives(clean_env: pytest.MonkeyPatch) -> None:
    name = f"bess-edge-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2.0)
        clean_env.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.ready() is True
        assert sock.recv(4096) == b"READY=1"


def test_when_no_notify_socket_then_every_call_is_a_noop(clean_env: pytest.MonkeyPatch) -> None:
    assert systemd.ready() is False
    assert systemd.stopping() is False
    assert systemd.watchdog_ping() is False
    assert systemd.status("x") is False
    assert systemd.watchdog_interval_s() is None


def test_when_socket_is_gone_then_notify_reports_false(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert systemd.ready() is False


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 30.0),
        ("500000", None, 0.5),
        ("30000000", "self", 30.0),
        ("30000000", "other", None),
        ("30000000", "junk", None),
        ("0", None, None),
        ("", None, None),
        ("soon", None, None),
    ],
)
def test_watchdog_interval_parsing(
    clean_env: pytest.MonkeyPatch, usec: str, pid: str | None, expected: float | None
) -> None:
    clean_env.setenv("WATCHDOG_USEC", usec)
    if pid is not None:
        pids = {"self": str(os.getpid()), "other": str(os.getpid() + 1), "junk": "x"}
        clean_env.setenv("WATCHDOG_PID", pids[pid])
    assert systemd.watchdog_interval_s() == expected


def test_when_watchdog_usec_set_then_watchdog_reads_period(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WATCHDOG_USEC", "4000000")
    assert systemd.Watchdog(lambda: True).interval_s == 4.0
    assert systemd.Watchdog(lambda: True).enabled


def test_when_no_watchdog_period_then_start_sends_nothing(notify_socket: NotifySocket) -> None:
    dog = systemd.Watchdog(lambda: True)
    assert not dog.enabled
    with dog:
        assert notify_socket.receive_all(0.2) == []


def test_when_healthy_then_pings_at_half_the_period(notify_socket: NotifySocket) -> None:
    with systemd.Watchdog(lambda: True, interval_s=0.2):
        messages = notify_socket.receive_all(0.55)
    # Pings at t = 0, 0.1, 0.2, ... : about 6 in 0.55 s; allow scheduling slack on a busy box.
    assert 3 <= len(messages) <= 7
    assert set(messages) == {"WATCHDOG=1"}


def test_when_check_turns_false_then_pings_stop_and_resume(notify_socket: NotifySocket) -> None:
    healthy = threading.Event()
    healthy.set()
    with systemd.Watchdog(healthy.is_set, interval_s=0.1):
        assert notify_socket.receive() == "WATCHDOG=1"
        healthy.clear()
        time.sleep(0.1)  # let a ping that was already on its way land
        notify_socket.drain()
        assert notify_socket.receive_all(0.4) == []
        healthy.set()
        assert notify_socket.receive() == "WATCHDOG=1"


def test_when_check_raises_then_no_ping(notify_socket: NotifySocket) -> None:
    def broken() -> bool:
        raise RuntimeError("writer state unreadable")

    dog = systemd.Watchdog(broken, interval_s=1.0)
    assert dog.beat() is False
    assert notify_socket.receive_all(0.1) == []


def test_when_stopped_then_no_more_pings(notify_socket: NotifySocket) -> None:
    dog = systemd.Watchdog(lambda: True, interval_s=0.1)
    dog.start()
    assert notify_socket.receive() == "WATCHDOG=1"
    dog.stop()
    notify_socket.drain()
    assert notify_socket.receive_all(0.3) == []
