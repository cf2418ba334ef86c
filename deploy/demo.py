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
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bess_common.config import InfluxSettings
from bess_common.influx import InfluxClient
from bess_common.timefmt import NS, iso_utc
from deploy.localservices import InfluxServer, MosquittoServer, logged_port

ROOT = Path(__file__).resolve().parent.parent
SHOW = {
    "battery": ("device", ["voltage_v", "current_a", "power_w", "soc_pct", "temperature_c"]),
    "cell": ("cell", ["voltage_v", "balancing"]),
    "system": ("", ["battery_power_w", "pv_w", "load_w", "grid_w", "battery_soc_pct"]),
    "collector_health": ("", ["lines_buffered", "lines_written", "buffer_depth"]),
}


def say(text: str) -> None:
    """One progress line."""
    print(f"[demo {time.strftime('%H:%M:%S')}] {text}", flush=True)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ) | (extra or {})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("BESS_LOGGING__FORMAT", "json")
    return env


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=_env(),
            start_new_session=True,
        )


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


def run_live(workdir: Path, seconds: int, influx: InfluxServer, broker: MosquittoServer) -> int:
    """Simulated GX + collector for `seconds` on the running InfluxDB and broker; print what landed."""
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        say(f"InfluxDB {influx.url}  Mosquitto 127.0.0.1:{broker.port}  (data in {workdir})")
        sim_log = workdir / "simulator.log"
        sim_log_from = sim_log.stat().st_size if sim_log.exists() else 0
        sim = _spawn(
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
            _stop(proc, name)


# The forecasting part of the story, budgeted so the whole demo stays under 10 minutes on 2 cores.
HISTORY_DAYS = 8
TEST_DAYS = 2  # the last 2 days are forecast (cut-offs); the 6 before them train the fine-tune
DEMO_TASK = "intraday"  # 1-min resolution, 1 h horizon (the shipped default task)
HUB_HOST = "huggingface.co"


@dataclass(frozen=True)
class Budget:
    """Cut-offs and fine-tune steps that fit the time limit with this model; env overrides for the backtest."""

    max_cutoffs: int
    finetune_steps: int
    env: dict[str, str]
    why: str


def budget() -> Budget:
    """Real Chronos-2 (~8 s per cut-off and ~7 s per LoRA step on 2 cores) or, without network access to the
    weights, the mini Chronos-2 stand-in (cheap: more cut-offs and steps, and a learning rate suited to a LoRA
    adapter on a 1.4 M-parameter model)."""
    base_model = os.environ.get("BESS_FORECASTER__BASE_MODEL", "amazon/chronos-2")
    if Path(base_model).expanduser().is_dir():
        return Budget(36, 20, {}, f"base model from {base_model}")
    try:
        socket.getaddrinfo(HUB_HOST, 443)
    except OSError:
        offline = {"HF_HUB_OFFLINE": "1", "BESS_FORECASTER__FINETUNE__LEARNING_RATE": "0.001"}
        return Budget(
            120,
            100,
            offline,
            f"no network access to {HUB_HOST}: the pretrained {base_model} cannot be "
            f"downloaded, so the backtest uses the STAND-IN: a mini Chronos-2 pretrained on synthetic series "
            f"only, labelled as such everywhere (fine-tune learning rate 1e-3 for it)",
        )
    return Budget(36, 20, {}, f"{HUB_HOST} reachable: {base_model} is downloaded on first use")


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
            env=_env(env),
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


def backfill(workdir: Path, influx: InfluxServer, start_s: int, end_s: int) -> int:
    """Simulated history at 60 s steps through the simulator's backfill (same physics as the live GX)."""
    days = (end_s - start_s) / 86400
    span = f"{iso_utc(start_s * NS)} .. {iso_utc(end_s * NS)}"
    say(f"backfilling {days:g} days of simulated history at 60 s steps ({span})")
    code, _ = follow(
        [
            "collector",
            "simulate",
            "--backfill",
            "--start",
            iso_utc(start_s * NS),
            "--end",
            iso_utc(end_s * NS),
            "--step-s",
            "60",
            "--influx-url",
            influx.url,
            "--database",
            "bess",
            "--site",
            "demo",
            "--seed",
            "1",
        ],
        workdir / "backfill.log",
        "backfill",
    )
    return code


def backtest(workdir: Path, start_s: int, split_s: int, end_s: int, args: argparse.Namespace) -> Path | None:
    """The forecaster's backtest with a short fine-tune; the run folder, or None on failure."""
    config = workdir / "config.toml"
    plan = budget()
    say(plan.why)
    plan = Budget(args.max_cutoffs or plan.max_cutoffs, args.finetune_steps or plan.finetune_steps, plan.env, plan.why)
    say(
        f"backtest: task {DEMO_TASK}, fine-tune on {iso_utc(start_s * NS)} .. {iso_utc(split_s * NS)} "
        f"({plan.finetune_steps} LoRA "
        f"steps), {plan.max_cutoffs} cut-offs after the split, 3 covariate variants"
    )
    code, plain = follow(
        [
            "forecaster",
            "backtest",
            "--config",
            str(config),
            "--task",
            DEMO_TASK,
            "--start",
            iso_utc(start_s * NS),
            "--split",
            iso_utc(split_s * NS),
            "--end",
            iso_utc(end_s * NS),
            "--max-cutoffs",
            str(plan.max_cutoffs),
            "--finetune-steps",
            str(plan.finetune_steps),
            "--out",
            str(workdir / "runs"),
            "--run-id",
            "demo",
            "--seed",
            "0",
            "--dataset",
            "simulated (make demo)",
            "--allow-stand-in",
        ],
        workdir / "backtest.log",
        "backtest",
        plan.env,
    )
    run = next((line.split("run: ", 1)[1] for line in plain if line.startswith("run: ")), None)
    return Path(run) if code == 0 and run else None


def report(workdir: Path, run: Path) -> Path | None:
    """Render the report of the run; the HTML path, or None on failure."""
    out = workdir / "report"
    code, plain = follow(
        ["forecaster", "report", "--run", str(run), "--out", str(out)], workdir / "report.log", "report"
    )
    html = next((line.split("html: ", 1)[1] for line in plain if line.startswith("html: ")), None)
    return Path(html) if code == 0 and html else None


SHOWN_VARIANTS = ("all_covariates", "target_only", "none")


def summary_lines(run: Path) -> list[str]:
    """Every model's MAE and skill over all regimes and leads (the run's scores.csv): base vs fine-tuned
    Chronos-2 (or its stand-in), the site-trained gradient-boosting model, the baselines."""
    import pandas as pd

    scores = pd.read_csv(run / "scores.csv")
    rows = scores[(scores["regime"] == "all") & (scores["lead_bucket"] == "all")]
    rows = rows[rows["variant"].isin(SHOWN_VARIANTS)]
    lines = [f"{'model':<16}{'covariates':<16}{'MAE':>10}{'skill':>8}{'windows':>9}"]
    for row in rows.itertuples():
        lines.append(
            f"{row.model!s:<16}{row.variant!s:<16}{row.mae_w:>8.0f} W{row.skill:>8.2f}{int(row.n_windows):>9d}"
        )
    return lines


def forecast_story(
    workdir: Path, influx: InfluxServer, live_start_s: float, timings: dict[str, float], args: argparse.Namespace
) -> int:
    """Backfill, backtest, report; each stage timed."""
    end_s = int(live_start_s) // 60 * 60
    start_s = end_s - int(args.history_days * 86400)
    split_s = end_s - int(min(TEST_DAYS, args.history_days / 4) * 86400)
    with timed("backfill", timings):
        if backfill(workdir, influx, start_s, end_s) != 0:
            say(f"backfill failed; see {workdir / 'backfill.log'}")
            return 1
    with timed("backtest", timings):
        run = backtest(workdir, start_s, split_s, end_s, args)
    if run is None:
        say(f"backtest failed; see {workdir / 'backtest.log'}")
        return 1
    with timed("report", timings):
        html = report(workdir, run)
    if html is None:
        say(f"report failed; see {workdir / 'report.log'}")
        return 1
    say("models over every held-back window (skill = 1 - MAE / persistence's MAE; details in the report):")
    for line in summary_lines(run):
        print(f"    {line}", flush=True)
    say(f"run folder: {run}  (forecasts.csv, scores.csv, manifest.json; forecasts in InfluxDB with run=demo)")
    say(f"REPORT: {html}")
    return 0


@contextlib.contextmanager
def timed(stage: str, timings: dict[str, float]) -> Iterator[None]:
    """Measure a stage and print its elapsed time."""
    began = time.monotonic()
    try:
        yield
    finally:
        timings[stage] = time.monotonic() - began
        say(f"stage {stage}: {timings[stage]:.0f} s")


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
        import shutil

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
