"""`python -m bench.collector_profile --seconds N --workdir D`: the collector's Agent in-process (the same
wiring as `collector run`) against the simulator, every thread under its own cProfile; prints the merged top
entries by own time. cProfile only sees the thread that enabled it, hence one profiler per thread."""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.collector_env import CollectorConfig, Services, Simulator, config_text
from bench.common import proc_cpu_s
from bess_common.influx import InfluxClient
from bess_common.logs import setup_logging
from collector.agent import Agent, build_sources
from collector.config import load_settings
from deploy.localservices import free_port

# Waiting, not working: left out of the listing (their time is the threads sleeping).
BLOCKING = ("acquire' of '_thread.lock", "select.poll", "select.select", "time.sleep", "select.epoll")


def profile_threads() -> list[cProfile.Profile]:
    """From now on every new thread starts its own profiler; the list fills as threads start."""
    profiles: list[cProfile.Profile] = []

    def start(frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.enable()

    threading.setprofile(start)
    return profiles


def top_entries(profiles: list[cProfile.Profile], limit: int = 25) -> str:
    """Merged pstats of every profiler, sorted by own time."""
    buf = io.StringIO()
    stats: pstats.Stats | None = None
    for prof in profiles:
        prof.create_stats()
        if stats is None:
            stats = pstats.Stats(prof, stream=buf)
        else:
            stats.add(prof)
    if stats is None:
        return "no thread was profiled"
    stats.strip_dirs()
    for key in [k for k in stats.stats if any(w in k[2] for w in BLOCKING)]:  # type: ignore[attr-defined]
        del stats.stats[key]  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(limit)
    text = buf.getvalue()
    return text[text.find("   ncalls") :] if "   ncalls" in text else text


def main(argv: list[str] | None = None) -> int:
    """Profile the agent for --seconds and print the top entries."""
    parser = argparse.ArgumentParser(prog="bench.collector_profile")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--cells", type=int, default=16, help="simulated battery cells (the ceiling uses more)")
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args(argv)
    work = args.workdir / "profile"
    work.mkdir(parents=True, exist_ok=True)
    with Services(work) as svc:
        sim = Simulator(work, svc.mosquitto.port, seed=7, cells=args.cells, start_timeout_s=180)
        cfg = CollectorConfig("profile", work / "buffer", sim.modbus_port, svc.mosquitto.port, free_port())
        path = work / "collector.toml"
        path.write_text(config_text(cfg, svc.influx.url))
        settings = load_settings(path)
        setup_logging("warning", "json")
        client = InfluxClient(settings.influx)
        client.create_database()
        profiles = profile_threads()
        agent = Agent(settings, client, build_sources(settings))
        cpu0, wall0 = proc_cpu_s(os.getpid()), time.monotonic()
        agent.start()
        try:
            time.sleep(args.seconds)
        finally:
            cpu1, wall1 = proc_cpu_s(os.getpid()), time.monotonic()
            agent.stop()
            sim.stop()
            client.close()
    print(
        f"process CPU while profiled: {(cpu1 - cpu0) / (wall1 - wall0):.2%} of one core "
        f"(cProfile itself adds overhead)\n"
    )
    print(top_entries(profiles))
    return 0


if __name__ == "__main__":
    sys.exit(main())
