"""The four collector measurements: steady state, backlog drain, ingest ceiling, end-to-end latency."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.collector_core import Step, match_second, metric, rate
from bench.collector_env import (
    SECOND_NS,
    Collector,
    Services,
    Simulator,
    grid_completeness,
    next_second_ns,
    sleep_until_ns,
)
from bench.common import CpuMeter, percentile, proc_rss_mb
from bess_common.lineproto import to_lines
from collector.buffer import DiskBuffer
from collector.deadletters import DeadLetters
from collector.gx.tables import fields
from collector.simulator.history import history_samples
from collector.simulator.physics import BessPhysics
from collector.simulator.truth import Truth
from collector.sink import Writer

WRITTEN = "bess_collector_lines_written"
LOG = Callable[[str], None]


@dataclass
class SteadyResult:
    """Steady state at 1 Hz."""

    seconds: int
    cpu_per_wall: float
    peak_rss_mb: float
    rss_end_mb: float
    lines_per_s: float
    values_per_s: float
    completeness: float
    complete_fields: int
    fields: int
    worst: list[tuple[str, float]] = field(default_factory=list)
    ticks_missed: float = 0.0


def steady(svc: Services, work: Path, *, seconds: int, warmup_s: float, seed: int, log: LOG) -> SteadyResult:
    """16 cells, both sources, production defaults; CPU, RSS, rate and completeness over `seconds`."""
    client = svc.client("steady")
    sim = Simulator(work, svc.mosquitto.port, seed=seed, cells=16)
    col = Collector(work, svc, sim, "steady")
    try:
        col.wait_written(1, 60)
        time.sleep(warmup_s)
        t0 = next_second_ns()
        sleep_until_ns(t0)
        m0, cpu = col.metrics(), CpuMeter(col.pid).start()
        log(f"steady state: measuring {seconds} s")
        sleep_until_ns(t0 + seconds * SECOND_NS)
        share = cpu.stop()
        m1, peak, rss = col.metrics(), proc_rss_mb(col.pid, "VmHWM"), proc_rss_mb(col.pid)
        time.sleep(3.0)  # let the last seconds of the window land
        comp = grid_completeness(client, t0, t0 + seconds * SECOND_NS)
    finally:
        col.stop()
        sim.stop()
        client.close()
    lines = metric(m1, WRITTEN) - metric(m0, WRITTEN)
    values = sum(v * comp.seconds for v in comp.per_field.values())
    return SteadyResult(
        seconds,
        share,
        peak,
        rss,
        rate(lines, cpu.wall_s),
        rate(values, seconds),
        comp.overall,
        comp.complete_fields,
        comp.fields,
        comp.worst(),
        metric(m1, "bess_collector_ticks_missed") - metric(m0, "bess_collector_ticks_missed"),
    )


@dataclass
class DrainResult:
    """Backlog drain vs raw ingest of the same lines, in interleaved rounds (raw, in-process, collector, ...,
    raw): each drain is compared with the mean of the raw ingests just before and after it."""

    outage_s: int
    backlog_lines: int
    raw_lines_per_s: list[float]  # rounds + 1
    inprocess_lines_per_s: list[float]  # one per round
    collector_lines_per_s: list[float]  # one per round
    collector_drain_s: list[float]

    def _ratios(self, drains: list[float]) -> list[float]:
        raw = self.raw_lines_per_s
        return [d / ((raw[i] + raw[i + 1]) / 2) for i, d in enumerate(drains)]

    @property
    def collector_ratios(self) -> list[float]:
        """Per round: collector drain / the neighbouring raw ingests."""
        return self._ratios(self.collector_lines_per_s)

    @property
    def inprocess_ratios(self) -> list[float]:
        """Per round: in-process Writer drain / the neighbouring raw ingests."""
        return self._ratios(self.inprocess_lines_per_s)


def _outage_lines(seed: int, outage_s: int) -> list[list[str]]:
    """One list of lines per second of the outage, as the agent would have buffered them (16 cells)."""
    end_ns = time.time_ns() // SECOND_NS * SECOND_NS
    start_ns = end_ns - outage_s * SECOND_NS
    per_second: dict[int, list] = {}
    for sample in history_samples(BessPhysics(seed, 16), start_ns, end_ns, 1, site="bench"):
        per_second.setdefault(sample.ts_ns, []).append(sample)
    return [to_lines(per_second[ts]) for ts in sorted(per_second)]


def _fill_buffer(directory: Path, seconds: list[list[str]]) -> None:
    buffer = DiskBuffer(directory, 1024 * 1024 * 1024, "full")
    try:
        for lines in seconds:
            buffer.append(lines)  # one transaction per second, as the ticker does
    finally:
        buffer.close()


def _raw_ingest(svc: Services, database: str, lines: list[str], batch: int) -> float:
    client = svc.client(database)
    try:
        began = time.monotonic()
        for i in range(0, len(lines), batch):
            client.write(lines[i : i + batch])
        return rate(len(lines), time.monotonic() - began)
    finally:
        client.close()


def _inprocess_drain(svc: Services, directory: Path, batch: int, database: str) -> float:
    client = svc.client(database)
    buffer = DiskBuffer(directory, 1024 * 1024 * 1024, "full")
    try:
        depth = buffer.depth()
        writer = Writer(buffer, client, DeadLetters(directory), batch_max_lines=batch)
        began = time.monotonic()
        if not writer.drain(600.0):
            raise RuntimeError("the in-process writer did not drain the backlog within 600 s")
        return rate(depth, time.monotonic() - began)
    finally:
        buffer.close()
        client.close()


def _collector_drain(
    svc: Services, work: Path, directory: Path, *, seed: int, backlog: int, database: str
) -> tuple[float, float]:
    """Start the real collector on a filled buffer (simulator live); (lines/s from first write to empty, s)."""
    sim = Simulator(work, svc.mosquitto.port, seed=seed, cells=16)
    col = Collector(work, svc, sim, database, buffer_dir=directory)
    try:
        up = last = None
        written = 0.0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            m = col.metrics()
            now = time.monotonic()
            if m and up is None:
                up = now  # /metrics comes up just before the writer thread starts
            written = m.get(WRITTEN + "_total", 0.0)
            if up is not None and written > 0 and m.get("bess_collector_buffer_depth_lines", backlog) <= 100:
                last = now
                break
            if not col.alive():
                raise RuntimeError(f"collector exited during the drain:\n{col.log_tail()}")
            time.sleep(0.02)
        if up is None or last is None:
            raise RuntimeError("the collector did not drain the backlog within 600 s")
        # from /metrics answering (the writer starts right after) to the buffer (almost) empty
        return rate(written, last - up), last - up
    finally:
        col.stop()
        sim.stop()


def drain(svc: Services, work: Path, *, outage_s: int, seed: int, log: LOG, rounds: int = 5) -> DrainResult:
    """Raw ingest, in-process Writer drain, real collector drain, ... raw ingest: all the same lines, in
    `rounds` interleaved rounds (a single ~1 s drain on a shared 2-core machine varies by +-30 %)."""
    batch = 5000  # collector.batch_max_lines default
    seconds = _outage_lines(seed, outage_s)
    lines = [line for sec in seconds for line in sec]
    log(f"drain: {len(lines)} lines for a {outage_s} s outage; filling the buffer; {rounds} rounds")
    filled = work / "drain-filled"
    _fill_buffer(filled, seconds)
    shutil.copytree(filled, work / "drain-profile")
    _raw_ingest(svc, "raw_warmup", lines, batch)  # the first write into a fresh influxd is slower
    result = DrainResult(outage_s, len(lines), [_raw_ingest(svc, "raw_0", lines, batch)], [], [], [])
    for k in range(rounds):
        inproc_dir, coll_dir = work / f"drain-inprocess-{k}", work / f"drain-collector-{k}"
        shutil.copytree(filled, inproc_dir)
        shutil.copytree(filled, coll_dir)
        result.inprocess_lines_per_s.append(_inprocess_drain(svc, inproc_dir, batch, f"drain_inprocess_{k}"))
        coll, coll_s = _collector_drain(svc, work, coll_dir, seed=seed, backlog=len(lines), database=f"drain_{k}")
        result.collector_lines_per_s.append(coll)
        result.collector_drain_s.append(coll_s)
        result.raw_lines_per_s.append(_raw_ingest(svc, f"raw_{k + 1}", lines, batch))
        shutil.rmtree(inproc_dir, ignore_errors=True)
        shutil.rmtree(coll_dir, ignore_errors=True)
        log(f"drain round {k + 1}/{rounds}: collector / raw {result.collector_ratios[-1]:.2f}")
    return result


def profile_drain(svc: Services, work: Path, top: int = 18) -> str:
    """cProfile of the in-process Writer draining the third copy of the filled buffer (one thread)."""
    import cProfile
    import io
    import pstats

    directory = work / "drain-profile"
    client = svc.client("drain_profile")
    buffer = DiskBuffer(directory, 1024 * 1024 * 1024, "full")
    try:
        writer = Writer(buffer, client, DeadLetters(directory), batch_max_lines=5000)
        prof = cProfile.Profile()
        prof.enable()
        writer.drain(600.0)
        prof.disable()
    finally:
        buffer.close()
        client.close()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    text = out.getvalue()
    return "\n".join(line for line in text.splitlines() if line.strip() and "Ordered by" not in line[:20])


def ceiling_step(svc: Services, work: Path, *, cells: int, seconds: int, warmup_s: float, seed: int) -> Step:
    """One ingest step: the simulator with `cells` cells through the whole pipeline for `seconds`."""
    db = f"ceiling_{cells}"
    client = svc.client(db)
    try:
        sim = Simulator(work, svc.mosquitto.port, seed=seed, cells=cells, start_timeout_s=180)
    except TimeoutError:
        client.close()
        raise
    col = Collector(work, svc, sim, db)
    try:
        col.wait_written(1, 90)
        time.sleep(warmup_s)
        t0 = next_second_ns()
        sleep_until_ns(t0)
        m0, ccpu, scpu = col.metrics(), CpuMeter(col.pid).start(), CpuMeter(sim.pid).start()
        sleep_until_ns(t0 + seconds * SECOND_NS)
        c_share, s_share, m1 = ccpu.stop(), scpu.stop(), col.metrics()
        time.sleep(3.0)
        comp = grid_completeness(client, t0, t0 + seconds * SECOND_NS, ("cell",))
    finally:
        col.stop()
        sim.stop()
        client.close()
    voltage = [v for k, v in comp.per_field.items() if k.endswith(".voltage_v")]
    lines = metric(m1, WRITTEN) - metric(m0, WRITTEN)
    ticks = metric(m1, "bess_collector_ticks") - metric(m0, "bess_collector_ticks")
    buffered = metric(m1, "bess_collector_lines_buffered") - metric(m0, "bess_collector_lines_buffered")
    return Step(
        cells,
        rate(lines, ccpu.wall_s),
        rate(sum(comp.per_field.values()) * seconds, seconds),
        c_share,
        s_share,
        int(metric(m1, "bess_collector_ticks_missed") - metric(m0, "bess_collector_ticks_missed")),
        int(metric(m0, "bess_collector_buffer_depth_lines")),
        int(metric(m1, "bess_collector_buffer_depth_lines")),
        rate(buffered, ticks),
        min(voltage) if voltage else 0.0,
        len(voltage),
    )


@dataclass
class LatencyResult:
    """Simulator change -> queryable in InfluxDB."""

    samples: list[float]
    unmatched: int
    stamp_lag_s: list[float] = field(default_factory=list)  # row timestamp - change second

    @property
    def p50(self) -> float:
        """Median latency (s)."""
        return percentile(self.samples, 50)

    @property
    def p95(self) -> float:
        """95th percentile latency (s)."""
        return percentile(self.samples, 95)


# system-row fields that change almost every second, day and night (a unique match needs a changed value)
LATENCY_FIELDS = ("load_l1_w", "grid_l1_w", "battery_power_w", "dc_system_power_w")


def _system_truth(seed: int) -> Callable[[int], dict[str, float | None]]:
    truth = Truth(BessPhysics(seed, 16))
    paths = {s.field: s.path for s in fields() if s.role == "system" and s.field in LATENCY_FIELDS}

    def at(t_s: int) -> dict[str, float | None]:
        values = truth.values_at(t_s)
        return {name: values.get(("system", path)) for name, path in paths.items()}  # type: ignore[misc]

    return at


def latency(svc: Services, work: Path, *, seconds: int, warmup_s: float, seed: int, poll_s: float) -> LatencyResult:
    """Poll InfluxDB for new system rows; match each row's values to the simulator second that produced them."""
    client = svc.client("latency")
    sim = Simulator(work, svc.mosquitto.port, seed=seed, cells=16)
    col = Collector(work, svc, sim, "latency")
    truth_at = _system_truth(seed)
    seen: dict[int, tuple[float, dict[str, float]]] = {}
    try:
        col.wait_written(1, 60)
        time.sleep(warmup_s)
        since = time.time_ns()
        end = time.monotonic() + seconds
        cols = ", ".join(f'"{f}"' for f in LATENCY_FIELDS)
        while time.monotonic() < end:
            q = f"SELECT {cols} FROM system WHERE time > {since}"
            for series in client.query(q):
                now_s = time.time()
                for row in series.rows():
                    ts = int(row["time"])
                    if ts not in seen:
                        seen[ts] = (now_s, {k: row[k] for k in LATENCY_FIELDS if row.get(k) is not None})
            time.sleep(poll_s)
    finally:
        col.stop()
        sim.stop()
        client.close()
    samples: list[float] = []
    lags: list[float] = []
    unmatched = 0
    for ts, (seen_s, values) in sorted(seen.items()):
        changed = match_second(values, truth_at, ts // SECOND_NS, back_s=5) if values else None
        if changed is None:
            unmatched += 1
        else:
            samples.append(seen_s - changed)
            lags.append(ts / SECOND_NS - changed)
    return LatencyResult(samples, unmatched, lags)
