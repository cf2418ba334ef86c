"""`make demo`: the whole story on this machine, with nothing but local processes.

Starts a throwaway InfluxDB and Mosquitto in ./demo-run, the simulated Cerbo GX and the collector, lets
them run for about a minute and prints what landed and how to query it. Then it backfills days of
simulated history, runs the forecaster's backtest (base vs a short LoRA fine-tune, baselines, covariate
ablation, the site-trained gradient-boosting model; the mini Chronos-2 stand-in, pretrained on synthetic
series only, when the real weights cannot be downloaded, said plainly),
renders the report and prints its path, with the elapsed time of every stage. Under 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bess_common.config import InfluxSettings
from bess_common.influx import InfluxClient
from deploy.demo_forecast import HISTORY_DAYS, forecast_story
from deploy.demo_procs import ROOT, say, spawn, stop, timed
from deploy.localservices import InfluxServer, MosquittoServer, logged_port

SHOW = {
    "battery": ("device", ["voltage_v", "current_a", "power_w", "soc_pct", "temperature_c"]),
    "cell": ("cell", ["voltage_v", "balancing"]),
    "system": ("", ["battery_power_w", "pv_w", "load_w", "grid_w", "battery_soc_pct"]),
    "collector_health": ("", ["lines_buffered", "lines_written", "buffer_depth"]),
}


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


def run_live(workdir: Path, seconds: int, influx: InfluxServer, broker: MosquittoServer) -> int:
    """Simulated GX + collector for `seconds` on the running InfluxDB and broker; print what landed."""
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        say(f"InfluxDB {influx.url}  Mosquitto 127.0.0.1:{broker.port}  (data in {workdir})")
        sim_log = workdir / "simulator.log"
        sim_log_from = sim_log.stat().st_size if sim_log.exists() else 0
        sim = spawn(
            [
                "collector",
                "simulate",
                "--modbus-port",
                "0",  # the OS picks a free port; the simulator logs which
                "--mqtt-host",
                "127.0.0.1",
                "--mqtt-port",
                str(broker.port),
                "--seed",
                "1",
            ],
            sim_log,
        )
        procs.append(("simulator", sim))
        modbus_port = logged_port(sim, sim_log, "simulator_started", "modbus_port", timeout_s=30, since=sim_log_from)
        config = workdir / "config.toml"
        write_config(config, influx.url, modbus_port, broker.port, workdir)
        say(f"simulated Cerbo GX up (Modbus 127.0.0.1:{modbus_port}); starting the collector")
        since_ns = time.time_ns()
        collector = spawn(["collector", "run", "--config", str(config)], workdir / "collector.log")
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
        code = stop(collector, "collector")
        say(f"collector stopped with exit code {code} (SIGTERM: buffer flushed)")
        print_landed(client, since_ns)
        print(
            f"\n  Query it yourself while the demo's InfluxDB runs, e.g.:\n"
            f"    influx -port {influx.port} -database bess -execute "
            f"'SELECT mean(voltage_v) FROM cell WHERE time > now() - 5m GROUP BY cell'\n"
            f"    curl -G '{influx.url}/query' --data-urlencode db=bess "
            f'--data-urlencode "q=SELECT * FROM battery ORDER BY time DESC LIMIT 3"'
        )
        return 0 if code == 0 else 1
    finally:
        for name, proc in reversed(procs):
            stop(proc, name)


def main() -> int:
    """Entry point of `make demo`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "demo-run")
    parser.add_argument("--live-seconds", type=int, default=60)
    parser.add_argument("--live-only", action="store_true", help="stop after the live part")
    parser.add_argument("--history-days", type=float, default=HISTORY_DAYS, help="simulated history to backfill")
    parser.add_argument("--max-cutoffs", type=int, default=None, help="override the backtest's cut-off budget")
    parser.add_argument("--finetune-steps", type=int, default=None, help="override the fine-tune's step budget")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    began = time.monotonic()
    timings: dict[str, float] = {}
    influx = InfluxServer(workdir / "influxdb")
    broker = MosquittoServer(workdir / "mosquitto")
    try:
        with timed("services", timings):
            influx.start()
            broker.start()
        live_start_s = time.time()
        with timed("live", timings):
            code = run_live(workdir, args.live_seconds, influx, broker)
        if code == 0 and not args.live_only:
            code = forecast_story(workdir, influx, live_start_s, timings, args)
    finally:
        broker.stop()
        influx.stop()
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    say(f"{'done' if code == 0 else 'FAILED'} in {time.monotonic() - began:.0f} s ({stages})")
    return code


if __name__ == "__main__":
    sys.exit(main())
