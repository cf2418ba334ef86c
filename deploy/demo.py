"""`make demo`: the whole story on this machine, with nothing but local processes.

Starts a throwaway InfluxDB and Mosquitto in ./demo-run, the simulated Cerbo GX and the collector, lets
them run for about a minute, prints what landed and how to query it, then stops everything cleanly.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from collector.common.config import InfluxSettings
from collector.common.influx import InfluxClient
from collector.common.localservices import InfluxServer, MosquittoServer, free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
SHOW = {
    "battery": ("device", ["voltage_v", "current_a", "power_w", "soc_pct", "temperature_c"]),
    "cell": ("cell", ["voltage_v", "temperature_c", "balancing"]),
    "system": ("", ["battery_power_w", "pv_w", "load_w", "grid_w", "battery_soc_pct"]),
    "collector_health": ("", ["lines_buffered", "lines_written", "buffer_depth"]),
}


def say(text: str) -> None:
    """One progress line."""
    print(f"[demo {time.strftime('%H:%M:%S')}] {text}", flush=True)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("BESS_LOGGING__FORMAT", "json")
    return env


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT,
                                cwd=ROOT, env=_env(), start_new_session=True)


def _stop(proc: subprocess.Popen[bytes], name: str, timeout_s: float = 20.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop within {timeout_s:.0f}s; killing it")
            proc.kill()
            proc.wait(5)
    return int(proc.returncode or 0)


def write_config(path: Path, influx_url: str, modbus_port: int, mqtt_port: int, workdir: Path) -> None:
    """The demo's config file: the shipped defaults pointed at the local processes."""
    path.write_text(
        f'site = "demo"\n\n[influx]\nurl = "{influx_url}"\ndatabase = "bess"\n\n'
        f'[gx]\nhost = "127.0.0.1"\nmodbus_port = {modbus_port}\nmqtt_port = {mqtt_port}\nportal_id = ""\n\n'
        f'[collector]\ninterval_s = 1.0\nbuffer_dir = "{workdir / "buffer"}"\nmetrics_port = 0\n\n'
        f'[forecaster]\nregistry_dir = "{workdir / "models"}"\n'
    )


def print_landed(client: InfluxClient, since_ns: int) -> None:
    """A short table per measurement: rows, series, latest values."""
    for measurement, (group_tag, fields) in SHOW.items():
        where = f"time >= {since_ns}"
        count = client.query(f'SELECT count("{fields[0]}") FROM "{measurement}" WHERE {where}')
        n = count[0].values[0][1] if count else 0
        print(f"\n  {measurement}: {n} rows of {fields[0]} since the collector started")
        group = f' GROUP BY "{group_tag}"' if group_tag else ""
        cols = ", ".join(f'last("{f}") AS "{f}"' for f in fields)
        series = client.query(f'SELECT {cols} FROM "{measurement}" WHERE {where}{group}')
        shown = series[:4]
        for s in shown:
            label = f"{group_tag}={s.tags.get(group_tag)}" if group_tag else "latest"
            row = s.rows()[0] if s.values else {}
            values = "  ".join(f"{f}={row.get(f)!s:>8.8}" for f in fields)
            print(f"    {label:<12} {values}")
        if len(series) > len(shown):
            print(f"    ... and {len(series) - len(shown)} more {group_tag} series")


def run_live(workdir: Path, seconds: int) -> int:
    """Local InfluxDB + broker + simulated GX + collector for `seconds`; print what landed."""
    influx = InfluxServer(workdir / "influxdb")
    broker = MosquittoServer(workdir / "mosquitto")
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        influx.start()
        broker.start()
        say(f"InfluxDB {influx.url}  Mosquitto 127.0.0.1:{broker.port}  (data in {workdir})")
        modbus_port = free_port()
        sim = _spawn(["collector", "simulate", "--modbus-port", str(modbus_port), "--mqtt-host", "127.0.0.1",
                      "--mqtt-port", str(broker.port), "--seed", "1"], workdir / "simulator.log")
        procs.append(("simulator", sim))
        wait_port(modbus_port, 30)
        config = workdir / "config.toml"
        write_config(config, influx.url, modbus_port, broker.port, workdir)
        say(f"simulated Cerbo GX up (Modbus 127.0.0.1:{modbus_port}); starting the collector")
        since_ns = time.time_ns()
        collector = _spawn(["collector", "run", "--config", str(config)], workdir / "collector.log")
        procs.append(("collector", collector))
        client = InfluxClient(InfluxSettings(url=influx.url, database="bess"))
        for elapsed in range(0, seconds, 10):
            time.sleep(min(10, seconds - elapsed))
            if collector.poll() is not None:
                say(f"collector exited early (code {collector.returncode}); see {workdir / 'collector.log'}")
                return 1
            rows = client.query(f'SELECT count("voltage_v") FROM "battery" WHERE time >= {since_ns}')
            landed = rows[0].values[0][1] if rows else 0
            say(f"{min(elapsed + 10, seconds)}s: {landed} battery rows in InfluxDB")
        code = _stop(collector, "collector")
        say(f"collector stopped with exit code {code} (SIGTERM: buffer flushed)")
        print_landed(client, since_ns)
        print(f"\n  Query it yourself while the demo's InfluxDB runs, e.g.:\n"
              f"    influx -port {influx.port} -database bess -execute "
              f"'SELECT mean(voltage_v) FROM cell WHERE time > now() - 5m GROUP BY cell'\n"
              f"    curl -G '{influx.url}/query' --data-urlencode db=bess "
              f"--data-urlencode \"q=SELECT * FROM battery ORDER BY time DESC LIMIT 3\"")
        return 0 if code == 0 else 1
    finally:
        for name, proc in reversed(procs):
            _stop(proc, name)
        broker.stop()
        influx.stop()


def main() -> int:
    """Entry point of `make demo`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "demo-run")
    parser.add_argument("--live-seconds", type=int, default=60)
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    if workdir.exists():
        import shutil

        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    return run_live(workdir, args.live_seconds)


if __name__ == "__main__":
    sys.exit(main())
