"""What every stage of `make demo` shares: progress lines, its child processes (started with the repository on
their path, stopped with SIGTERM, or followed while their progress events are shown) and the timing of a stage."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def say(text: str) -> None:
    """One progress line."""
    print(f"[demo {time.strftime('%H:%M:%S')}] {text}", flush=True)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment plus `extra`, with the repository on PYTHONPATH, unbuffered output and JSON logs."""
    env = dict(os.environ) | (extra or {})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("BESS_LOGGING__FORMAT", "json")
    return env


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start `python -m ARGS` in the background, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=child_env(),
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes], name: str, timeout_s: float = 20.0) -> int:
    """SIGTERM, then a kill after `timeout_s`; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop within {timeout_s:.0f}s; killing it")
            proc.kill()
            proc.wait(5)
    return int(proc.returncode or 0)


SHOW_EVENTS = {
    "backfill_progress": ("percent", "points"),
    "finetune_progress": ("step", "steps", "loss", "eta_s"),
    "finetune_eval": ("step", "eval_loss"),
    "backtest_progress": ("cutoff", "cutoffs", "eta_s"),
}


def follow(args: list[str], log: Path, name: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """Run `python -m ARGS`, keep its output in `log`, show its progress events and its plain lines."""
    plain: list[str] = []
    with log.open("a", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=child_env(env),
            text=True,
            bufsize=1,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            text = line.strip().replace("\r", "")
            if not text:
                continue
            try:
                event = json.loads(text)
            except ValueError:
                if not text.startswith(("Loading weights", "Writing model", "warnings.warn", "/")):
                    plain.append(text)
                    print(f"    {text}", flush=True)
                continue
            keys = SHOW_EVENTS.get(event.get("event", "")) if isinstance(event, dict) else None
            if keys:
                print(f"    {name}: " + "  ".join(f"{k}={event.get(k)}" for k in keys), flush=True)
        return proc.wait(), plain


@contextlib.contextmanager
def timed(stage: str, timings: dict[str, float]) -> Iterator[None]:
    """Measure a stage and print its elapsed time."""
    began = time.monotonic()
    try:
        yield
    finally:
        timings[stage] = time.monotonic() - began
        say(f"stage {stage}: {timings[stage]:.0f} s")
