"""Helpers for the forecaster's fault tests: a config file, a registry version made by a real (2-step) LoRA
fine-tune of the tiny Chronos-2, a `serve` subprocess with its log lines, a read-only registry."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from bess_common.influx import InfluxClient
from forecaster.registry import Registry, Version
from tests.conftest import REPO_ROOT, fc_synthetic_rows, python_env

NS = 1_000_000_000

FINETUNE = """
[forecaster.finetune]
task = "{task}"
cron = "{cron}"
train_days = 2
validation_days = 0.5
gate_days = 0.5
gate_windows = 2
context_steps = 64
num_steps = 2
learning_rate = 0.01
batch_size_rows = 18
eval_steps = 2
keep_versions = 3
"""


def task_toml(name: str, cadence: str = "20s", resolution: str = "20s", context: int = 128, horizon: int = 6) -> str:
    """One [[forecaster.tasks]] table."""
    return (
        f'[[forecaster.tasks]]\nname = "{name}"\nresolution = "{resolution}"\ncontext_steps = {context}\n'
        f'horizon_steps = {horizon}\ncadence = "{cadence}"\n'
    )


def write_config(
    path: Path,
    influx_url: str,
    tiny: Path,
    registry: Path,
    tasks: list[str],
    *,
    cron: str = "",
    extra: str = "",
    influx_extra: str = "",
    level: str = "info",
) -> Path:
    """A config file for the forecaster; the fine-tune trains the first task."""
    first = tasks[0].split('"')[1]
    path.write_text(
        f'[influx]\nurl = "{influx_url}"\n{influx_extra}\n[logging]\nformat = "json"\nlevel = "{level}"\n'
        f'[forecaster]\nbase_model = "{tiny}"\nregistry_dir = "{registry}"\n{extra}\n'
        + FINETUNE.format(task=first, cron=cron)
        + "".join(tasks)
    )
    return path


def fill_recent(influx: InfluxClient, days: float = 1.0, step_s: int = 20, ahead_s: int = 0) -> None:
    """Synthetic history up to now + ahead_s: `serve` then has fresh context at every cut-off of a test that
    runs for minutes (a forecast reads only what lies before its cut-off)."""
    now = time.time_ns()
    rows = fc_synthetic_rows(now - int(days * 86400) * NS, now + ahead_s * NS, step_s=step_s)
    for i in range(0, len(rows), 5000):
        influx.write(rows[i : i + 5000])


def make_adapter(tiny: Path, out: Path) -> Path:
    """A LoRA adapter of the tiny Chronos-2 from a real 2-step fine-tune (about 5 s)."""
    import numpy as np

    from forecaster.models import load_pipeline

    pipeline = load_pipeline(str(tiny), 2)
    target = 500 * np.sin(np.arange(400) / 10.0)
    pipeline.fit(
        [{"target": target}],
        prediction_length=6,
        finetune_mode="lora",
        context_length=64,
        num_steps=2,
        batch_size=8,
        output_dir=str(out),
        use_cpu=True,
        disable_tqdm=True,
    )
    return out / "finetuned-ckpt"


def add_version(registry: Registry, adapter: Path, name: str, *, active: bool = False) -> Version:
    """Register a copy of `adapter` as version `name` (as a fine-tune does), optionally active."""
    version = registry.add(name, adapter, {"mode": "lora", "num_steps": 2, "created_at": "2026-01-01T00:00:00+00:00"})
    if active:
        registry.set_active(name)
    return version


def forecast_rows(influx: InfluxClient, where: str = "") -> list[dict[str, object]]:
    """Every stored forecast point with its tags."""
    series = influx.query(f'SELECT * FROM "forecast" {where} GROUP BY *')
    return [{**s.tags, **row} for s in series for row in s.rows()]


class Serve:
    """`bess-forecaster serve` as a subprocess; its stdout lines are read on demand (no pipe stalls: a file)."""

    def __init__(self, config: Path, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = workdir / f"serve-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forecaster", "serve", "--config", str(config)],
            cwd=REPO_ROOT,
            env={**python_env(), **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def lines(self) -> list[str]:
        """Everything written so far."""
        return self.log_path.read_text(errors="replace").splitlines()

    def events(self) -> list[dict[str, object]]:
        """The JSON log lines, parsed."""
        out = []
        for line in self.lines():
            if line.startswith("{"):
                with suppress(json.JSONDecodeError):
                    out.append(json.loads(line))
        return out

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        """Signal it and wait; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self._log.close()
        return code


@contextmanager
def serving(config: Path, workdir: Path, env: dict[str, str] | None = None) -> Iterator[Serve]:
    """A running `serve`, stopped (SIGTERM) on the way out."""
    serve = Serve(config, workdir, env)
    try:
        yield serve
    except BaseException:
        print("\n".join(line[:600] for line in serve.lines()[-80:]))  # shown by pytest with the failure
        raise
    finally:
        serve.stop()


def read_only_command(cmd: list[str], folder: Path) -> list[str]:
    """`cmd` run with `folder` read-only. As root (whom permissions do not stop) the folder is bind-mounted
    read-only in a private mount namespace; otherwise its permissions are removed."""
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        return cmd
    unshare = shutil.which("unshare")
    assert unshare, "unshare(1) is needed to make a folder read-only for root"
    quoted = " ".join(f"'{c}'" for c in cmd)
    return [unshare, "-m", "sh", "-c", f"mount --bind -o ro '{folder}' '{folder}' && exec {quoted}"]
