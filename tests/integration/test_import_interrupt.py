"""Ctrl-C during an import: one line instead of a traceback, and nothing lost (the rerun finishes it).

InfluxDB hangs (SIGSTOP) while the first run goes, so that run cannot finish before the Ctrl-C, however fast
the machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bess_common.influx import InfluxClient
from deploy.localservices import InfluxServer
from tests.conftest import REPO_ROOT, python_env, run_cli
from tests.integration.sourcewait import wait_until
from tests.integration.test_import_ha import write_config

pytestmark = pytest.mark.integration

ROWS = 400_000


def _default_sigint() -> None:
    """Ctrl-C's default action in the import, as from a terminal: a suite started in the background (`make test &`)
    ignores SIGINT, and its children inherit that, so the import would never see the signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_when_an_import_is_interrupted_then_one_line_says_so_and_the_rerun_lands_every_row(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    csv_path = tmp_path / "big.csv"
    start_s = 1_700_000_000
    csv_path.write_text("t,P\n" + "".join(f"{start_s + i},{i % 997}\n" for i in range(ROWS)))
    config = write_config(tmp_path, influx_server)
    args = ["--config", str(config), "--format", "generic", "--site", "big", "--time-format", "epoch_s"]
    args += ["--map", "P=system.battery_power_w", str(csv_path)]
    log = (tmp_path / "import.log").open("w+")
    assert influx_server.proc is not None
    os.kill(influx_server.proc.pid, signal.SIGSTOP)  # hung, not down: every write waits
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "collector", "import", *args],
            cwd=REPO_ROOT,
            env=python_env(),
            stdout=log,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_default_sigint,  # noqa: PLW1509 (it only resets one signal disposition)
        )
        wait_until(lambda: "import_started" in (tmp_path / "import.log").read_text(), 60, what="the import to start")
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _, err = proc.communicate(timeout=60)
    finally:
        os.kill(influx_server.proc.pid, signal.SIGCONT)
    log.close()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted: what was read so far is kept in")

    rerun = run_cli("collector", "import", *args, timeout_s=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    count = influx.query("SELECT count(battery_power_w) FROM system WHERE site = 'big'")[0].rows()[0]["count"]
    assert count == ROWS
