"""`bess-forecaster serve`: the scheduled service (forecasts, scoring, fine-tunes), clean on SIGTERM."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from bess_common import systemd
from bess_common.logs import get_logger
from forecaster.commands.common import add_config, context_notes, load, runtime
from forecaster.jobs import safe
from forecaster.parentwatch import child_env
from forecaster.registry import RegistryError, RegistryLocked
from forecaster.scheduler import build_scheduler, cron_trigger

HELP = "Run the forecaster service: forecast every task at its cadence, score hourly, re-fine-tune on cron"
log = get_logger("forecaster.serve")


class FinetuneLauncher:
    """Runs `finetune --now` in a child process so forecasts never wait on it; terminates it on shutdown."""

    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = False

    def __call__(self) -> int | None:
        """Start the child and wait for it (the scheduler's max_instances=1 keeps it single)."""
        cmd = [sys.executable, "-m", "forecaster", "finetune", "--now"]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        with self._lock:
            if self._stopping:
                return None
            log.info("finetune_launched", command=" ".join(cmd))
            # Output goes to our stdout/journal; the child dies with us even on SIGKILL (parentwatch).
            self._child = subprocess.Popen(cmd, env=child_env())
        code = self._child.wait()
        log.info("finetune_exited", code=code)
        return code

    def stop(self) -> None:
        """Terminate a running fine-tune (its lock is released by the kernel)."""
        with self._lock:
            self._stopping = True
            child = self._child
        if child is not None and child.poll() is None:
            child.terminate()


class Liveness:
    """Jobs call beat() when they finish (whatever the outcome); healthy() feeds the systemd watchdog."""

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self._last = time.monotonic()

    def beat(self) -> None:
        """A job finished: the scheduler loop is alive."""
        self._last = time.monotonic()

    def healthy(self) -> bool:
        """False once no job has finished for `stall_s` (a hung forecast): systemd then restarts us."""
        return time.monotonic() - self._last < self.stall_s


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments."""
    add_config(parser)


def _clean_scratch(rt: Any) -> None:
    """Scratch folders of a fine-tune killed with the previous run of the service (none runs now)."""
    try:
        with rt.registry.lock():
            rt.registry.clean_scratch()
    except (RegistryLocked, RegistryError) as exc:
        log.warning("finetune_scratch_not_checked", reason=str(exc))


def main(args: argparse.Namespace) -> int:
    """Run until SIGTERM/SIGINT; 0 on a clean stop, 2 bad config or refused InfluxDB credentials."""
    settings = load(args)
    if settings is None:
        return 2
    fs = settings.forecaster
    if fs.finetune.cron.strip():
        try:
            cron_trigger(fs.finetune.cron)
        except ValueError as exc:
            print(f"forecaster.finetune.cron: {exc}", file=sys.stderr)
            return 2
    early_stop = threading.Event()

    def stop_waiting(signum: int, frame: FrameType | None) -> None:
        early_stop.set()

    signal.signal(signal.SIGTERM, stop_waiting)
    signal.signal(signal.SIGINT, stop_waiting)
    systemd.status("waiting for InfluxDB")
    rt = runtime(settings, service=True, stop=early_stop, on_wait=lambda s: systemd.extend_timeout(s + 60))
    if isinstance(rt, int):
        return rt
    svc = rt.service()
    launcher = FinetuneLauncher(args.config)
    rt.registry.scan()  # report damaged versions once, at start
    _clean_scratch(rt)
    for note in context_notes(settings, rt.models):
        log.warning("task_context_cut", note=note)

    liveness = Liveness(stall_s=max(600.0, 3.0 * min(t.cadence_s for t in fs.tasks)))

    def forecast(name: str) -> Any:
        try:
            return safe(svc.catch_up, svc.task(name))
        finally:
            liveness.beat()

    def score() -> None:
        for task in fs.tasks:
            safe(svc.score, task)
        liveness.beat()

    # Scheduled even without the base model: the child re-trains the gradient-boosting model first, which
    # needs only InfluxDB; the LoRA fine-tune then says in one line why it cannot run.
    scheduler = build_scheduler(fs, forecast, score, launcher)

    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        log.info("stopping", signal=signal.Signals(signum).name)
        systemd.stopping()
        launcher.stop()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if early_stop.is_set():  # a signal came while starting up
        rt.client.close()
        return 0
    log.info(
        "forecaster_started",
        tasks=[t.name for t in fs.tasks],
        base_model=fs.base_model,
        models="all" if rt.models is not None else "baselines only",
        finetune_cron=fs.finetune.cron,
    )
    watchdog = systemd.Watchdog(lambda: stopping.is_set() or (scheduler.running and liveness.healthy()))
    systemd.ready(f"forecasting {', '.join(t.name for t in fs.tasks)}")
    with watchdog:
        scheduler.start()
    rt.client.close()
    log.info("forecaster_stopped")
    return 0
