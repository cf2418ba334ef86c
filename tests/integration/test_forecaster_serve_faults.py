"""`bess-forecaster serve` (a subprocess) under faults, against a real influxd and the tiny offline
Chronos-2: InfluxDB not up yet, two tasks starting together, InfluxDB hung for a while, a job failing with
a token configured, a SIGKILL while its fine-tune child runs."""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from bess_common.config import InfluxSettings
from bess_common.errors import RetryableError
from bess_common.influx import InfluxClient
from bess_common.logs import setup_logging
from deploy.localservices import InfluxServer
from forecaster.jobs import safe
from forecaster.registry import Registry
from tests.conftest import REPO_ROOT, python_env
from tests.integration.fcsupport import (
    NS,
    add_version,
    fill_recent,
    forecast_rows,
    make_adapter,
    serving,
    task_toml,
    write_config,
)
from tests.integration.sourcewait import wait_until

pytestmark = pytest.mark.integration

FAST = task_toml("fast")  # 20 s cadence and resolution
SECRET = "tok-LEAKCHECK-5e1f"


@pytest.fixture(scope="module")
def tiny_adapter(tiny_chronos_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real LoRA adapter of the tiny model, copied into each test's registry."""
    return make_adapter(tiny_chronos_dir, tmp_path_factory.mktemp("adapter"))


def seconds(iso: object) -> float:
    """An ISO-8601 time of a log line as epoch seconds."""
    return datetime.fromisoformat(str(iso)).timestamp()


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def cutoffs(influx: InfluxClient, task: str, model: str = "persistence") -> list[int]:
    """The distinct cut-offs stored for a task's model, oldest first."""
    rows = forecast_rows(influx, f"WHERE \"task\" = '{task}' AND \"model\" = '{model}'")
    return sorted({int(r["cutoff_ns"]) for r in rows})  # type: ignore[call-overload]


def test_when_influx_is_not_up_yet_then_serve_predict_score_and_finetune_wait_for_it(
    influx: InfluxClient, influx_server: InfluxServer, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    fill_recent(influx, days=3.5)
    registry = Registry(tmp_path / "models")
    config = write_config(tmp_path / "config.toml", influx_server.url, tiny_chronos_dir, registry.root, [FAST])
    influx_server.stop()  # a power cut: the forecaster comes up before InfluxDB
    base = [sys.executable, "-m", "forecaster"]
    one_shots = {
        name: subprocess.Popen(
            [*base, *args, "--config", str(config)],
            cwd=REPO_ROOT,
            env=python_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, args in (("predict", ["predict"]), ("score", ["score"]), ("finetune", ["finetune", "--now"]))
    }
    with serving(config, tmp_path) as serve:
        wait_until(lambda: any(e.get("event") == "influx_waiting" for e in serve.events()), 120, what="serve waiting")
        time.sleep(3)
        assert all(p.poll() is None for p in one_shots.values()), "a command gave up instead of waiting"
        influx_server.start()
        outputs = {name: p.communicate(timeout=300)[0] for name, p in one_shots.items()}
        wait_until(lambda: bool(cutoffs(influx, "fast")), 90, what="serve's forecasts", poll_s=1.0)
    for name, p in one_shots.items():
        assert p.returncode == 0 and "Traceback" not in outputs[name], f"{name}: {outputs[name][-3000:]}"
    assert "points written" in outputs["predict"] and "score points written" in outputs["score"]
    assert registry.versions() and registry.versions()[0].version in outputs["finetune"]
    events = [e.get("event") for e in serve.events()]
    assert "influx_up" in events and "forecaster_stopped" in events
    assert {r["model"] for r in forecast_rows(influx)} >= {"base", "persistence"}  # short context: no seasonal


def test_when_two_tasks_start_together_then_each_first_cycle_has_finetuned(
    influx: InfluxClient, influx_server: InfluxServer, tiny_chronos_dir: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    fill_recent(influx)
    registry = Registry(tmp_path / "models")
    add_version(registry, tiny_adapter, "ft-a", active=True)
    tasks = [FAST, task_toml("fast_b")]
    config = write_config(tmp_path / "config.toml", influx_server.url, tiny_chronos_dir, registry.root, tasks)
    with serving(config, tmp_path) as serve:
        wait_until(lambda: bool(cutoffs(influx, "fast") and cutoffs(influx, "fast_b")), 120, what="both", poll_s=1.0)
        time.sleep(2)  # let the second task's first run finish writing
    assert serve.proc.returncode == 0, "\n".join(serve.lines()[-40:])
    for task in ("fast", "fast_b"):
        first = cutoffs(influx, task)[0]
        models = {r["model"] for r in forecast_rows(influx, f'WHERE "task" = \'{task}\' AND "cutoff_ns" = {first}')}
        assert "finetuned" in models, f"{task}'s first cycle lacks finetuned: {models}"


def test_when_influx_hangs_for_a_while_then_missed_cutoffs_are_backfilled_and_jobs_fire_at_their_cutoff(
    influx: InfluxClient, influx_server: InfluxServer, tiny_chronos_dir: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    fill_recent(influx, ahead_s=900)
    registry = Registry(tmp_path / "models")
    add_version(registry, tiny_adapter, "ft-a", active=True)
    damaged = add_version(registry, tiny_adapter, "ft-b")
    (damaged.path / "manifest.json").write_text("{")  # a damaged version must not stop anything
    tasks = [FAST, task_toml("minute", cadence="1m")]
    config = write_config(
        tmp_path / "config.toml",
        influx_server.url,
        tiny_chronos_dir,
        registry.root,
        tasks,
        influx_extra="timeout_s = 3",
        level="debug",
    )
    # Start 28 s after a minute's cut-off: the old scheduler, which kept the start-up second, then fired the
    # minute task at least 30 s after its cut-offs; it must fire at cut-off + 5 s.
    time.sleep((28 - time.time() % 60) % 60)
    with serving(config, tmp_path) as serve:
        wait_until(lambda: len(cutoffs(influx, "fast")) >= 2, 120, what="two fast cut-offs", poll_s=1.0)
        assert influx_server.proc is not None
        os.kill(influx_server.proc.pid, signal.SIGSTOP)  # hung, not down: every request times out
        stopped_at = time.time_ns()
        time.sleep(45)
        os.kill(influx_server.proc.pid, signal.SIGCONT)
        resumed_at = time.time_ns()
        wait_until(lambda: cutoffs(influx, "fast")[-1] > resumed_at + 20 * NS, 120, what="fast after", poll_s=1.0)
        wait_until(lambda: cutoffs(influx, "minute")[-1] > resumed_at, 120, what="minute after", poll_s=1.0)
    fast = cutoffs(influx, "fast")
    assert [b - a for a, b in itertools.pairwise(fast)] == [20 * NS] * (len(fast) - 1), "a cut-off is missing"
    assert fast[0] < stopped_at - 20 * NS and len(fast) >= 5
    events = serve.events()
    assert sum(e.get("event") == "registry_version_set_aside" for e in events) == 1
    assert {r["model"] for r in forecast_rows(influx, "WHERE \"task\" = 'fast'")} >= {
        "base",
        "finetuned",
        "persistence",
    }
    # After the start-up run, every on-time forecast of the minute task is issued at its cut-off + 5 s.
    issued = [
        (int(seconds(e["cutoff"])) * NS, seconds(e["timestamp"]))
        for e in events
        if e.get("event") == "forecast_written" and e.get("task") == "minute"
    ]
    on_time = [(c, t) for c, t in issued[1:] if not stopped_at - 60 * NS <= c <= resumed_at]
    assert on_time, issued
    assert all(t - c / NS < 25 for c, t in on_time), [(c, t - c / NS) for c, t in on_time]


def test_when_a_failure_passes_through_the_influx_client_then_no_logged_traceback_carries_the_token(
    influx_server: InfluxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's request frame holds the auth header: a traceback with frame locals would log the token."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    setup_logging("info", "json")  # as the services set it up off a TTY (journald)
    client = InfluxClient(InfluxSettings(url=influx_server.url, token=SecretStr(SECRET)))
    influx_server.stop()

    def score_job() -> None:
        try:
            client.query('SELECT * FROM "forecast" LIMIT 1')
        except RetryableError as exc:  # a bug in a handler: the outage is in the traceback's chain
            raise RuntimeError("failed while handling an InfluxDB outage") from exc

    try:
        safe(score_job)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = out.getvalue().splitlines()
    failed = [json.loads(ln) for ln in lines if '"job_failed"' in ln]
    assert len(failed) == 1 and "InfluxDB unreachable" in json.dumps(failed[0]["exception"])  # traceback kept
    leaks = [ln[:200] for ln in lines if SECRET in ln]
    assert not leaks, leaks


def test_when_serve_is_killed_then_its_finetune_child_dies_with_it(
    influx: InfluxClient, influx_server: InfluxServer, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    fill_recent(influx, days=3.5)
    registry = Registry(tmp_path / "models")
    config = write_config(
        tmp_path / "config.toml", influx_server.url, tiny_chronos_dir, registry.root, [FAST], cron="*/10 * * * * *"
    )

    with serving(config, tmp_path) as serve:
        wait_until(lambda: bool(children(serve.proc.pid)), 120, what="the fine-tune child", poll_s=0.5)
        child = children(serve.proc.pid)[0]
        serve.proc.kill()  # SIGKILL: no chance to stop the child itself
        serve.proc.wait(10)
    try:
        wait_until(lambda: not Path(f"/proc/{child}").exists(), 30, what="the orphaned fine-tune to exit", poll_s=0.5)
    finally:
        if Path(f"/proc/{child}").exists():
            os.kill(child, signal.SIGKILL)
    time.sleep(2)
    assert registry.versions() == []
