"""A child process that must not outlive the service that started it (the scheduled fine-tune).

The parent passes its pid in BESS_PARENT_PID. The child asks the kernel for SIGTERM when the parent dies
(Linux PR_SET_PDEATHSIG, which covers SIGKILL of the parent), and exits at once if the parent is already
gone (it died before the request was made). Without the variable nothing happens (a fine-tune started by
hand or by its own unit)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_PID_ENV = "BESS_PARENT_PID"
PR_SET_PDEATHSIG = 1


def child_env(parent_pid: int | None = None) -> dict[str, str]:
    """The environment for a child that must die with this process."""
    return {**os.environ, PARENT_PID_ENV: str(parent_pid or os.getpid())}


def die_with_parent() -> None:
    """Arrange SIGTERM on the parent's death; exit 1 now when the parent is already gone."""
    wanted = os.environ.get(PARENT_PID_ENV, "")
    if not wanted.isdigit():
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != int(wanted):
        print(f"parent process {wanted} is gone; not starting", file=sys.stderr)
        sys.exit(1)
