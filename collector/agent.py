"""The collector daemon's wiring: sources -> Grid -> 1 Hz ticker -> DiskBuffer -> Writer -> InfluxDB.

Threads: each source runs its own; the ticker wakes on every whole grid second (drift-free: the next boundary
is computed from the wall clock each time; a late tick never emits the same second twice; clock jumps are
logged); the writer drains the buffer. Shutdown (`stop`): sources stop, a final snapshot, the writer drains
for at most `shutdown_flush_timeout_s`, the buffer closes; whatever was not flushed stays for the next start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bess_common.influx import InfluxClient
from bess_common.lineproto import to_lines
from bess_common.logs import RepeatCounter, get_logger
from bess_common.sample import Sample
from collector.buffer import DiskBuffer
from collector.config import Settings
from collector.deadletters import DeadLetters
from collector.grid import Grid
from collector.health import Health, HealthSnapshot
from collector.longtail import LongTail
from collector.observation import Event, Observation, Rows, Source, TopicValue
from collector.plan import PlanTracker
from collector.sink import Writer
from collector.stillness import Stillness

CLOCK_JUMP_S = 2.0  # wall vs monotonic disagreement between two ticks that counts as a clock jump
LOOP_GRACE_S = 30.0  # beyond the writer's longest legitimate pause (backoff cap + HTTP timeout)
SOURCE_LOOP_LIMIT_S = 90.0  # a source loop quiet for longer than its backoff cap + timeouts is hung


def build_sources(settings: Settings) -> list[Source]:
    """The sources enabled in [gx]: MQTT (per-cell, full precision) and/or Modbus (system, cross-check)."""
    sources: list[Source] = []
    if settings.gx.mqtt_enabled:
        from collector.sources.mqtt import MqttSource

        sources.append(MqttSource(settings.gx, settings.collector))
    if settings.gx.modbus_enabled:
        from collector.sources.modbus import ModbusSource

        sources.append(ModbusSource(settings.gx, settings.collector))
    if settings.collector.pv_forecast.enabled:
        from collector.pvforecast.provider import PvForecastSource

        sources.append(PvForecastSource(settings.collector.pv_forecast, settings.site, settings.collector.buffer_dir))
    return sources


def grid_ttls(settings: Settings) -> dict[str, float]:
    """TTL per staleness class, from [collector]."""
    c = settings.collector
    return {"shunt": c.ttl_shunt_s, "cell": c.ttl_cell_s, "system": c.ttl_system_s}


@dataclass(slots=True)
class _TickState:
    last_ts_ns: int | None = None
    last_wall_ns: int = 0
    last_mono_s: float = 0.0
    last_health_bucket: int = -1
    ticks: int = 0
    missed: int = 0
    errors: int = 0
    health_errors: int = 0


class Agent:
    """Owns the pipeline's threads; start(), then stop() once (e.g. on SIGTERM)."""

    def __init__(
        self,
        settings: Settings,
        client: InfluxClient,
        sources: list[Source],
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        mono_s: Callable[[], float] = time.monotonic,
    ) -> None:
        c = settings.collector
        self.settings = settings
        self.sources = sources
        self.grid = Grid(settings.site, grid_ttls(settings))
        self.stillness = Stillness(c.suspect_after_s)
        self.long_tail = LongTail(c.long_tail, settings.site)
        self.plan = PlanTracker(settings.site, c.plan_settle_s)
        self._suspects: set[str] = set()
        self.buffer = DiskBuffer(c.buffer_dir, int(c.buffer_max_mb * 1024 * 1024), c.buffer_sync)
        self.dead_letters = DeadLetters(c.buffer_dir)
        self.writer = Writer(
            self.buffer,
            client,
            self.dead_letters,
            batch_max_lines=c.batch_max_lines,
            retry_max_s=c.retry_max_s,
            flush_interval_s=c.flush_interval_s,
        )
        self.health = Health(settings.site, self.snapshot)
        self.metrics_port = 0
        self._wall_ns = wall_ns
        self._mono_s = mono_s
        self._interval_ns = round(c.interval_s * 1e9)
        self._health_ns = max(self._interval_ns, round(c.health_interval_s * 1e9))
        self._tick = _TickState()
        self._polled: dict[str, int] = {}
        self._polled_lock = threading.Lock()
        self._rows: list[Sample] = []  # complete rows from sources (Rows), buffered with the next second
        self._ticker_stop = threading.Event()
        self._writer_stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._writer_thread: threading.Thread | None = None
        self._log = get_logger("agent")
        self._repeats = RepeatCounter(self._log)

    # -- data path ----------------------------------------------------------------------------------------
    def _sink(self, events: list[Event]) -> None:
        """What the sources call: count observations per source, then hand them to the grid."""
        counts: dict[str, int] = {}
        rows: list[Sample] = []
        for event in events:
            if isinstance(event, Observation):
                counts[event.source] = counts.get(event.source, 0) + 1
            elif isinstance(event, TopicValue):
                self.long_tail.offer(event)
            elif isinstance(event, Rows):
                rows.extend(event.samples)
                counts[event.source] = counts.get(event.source, 0) + len(event.samples)
        with self._polled_lock:
            for source, n in counts.items():
                self._polled[source] = self._polled.get(source, 0) + n
            self._rows.extend(rows)
        self.stillness.observe(events)
        self.plan.observe(events)
        self.grid.apply(events)

    def _health_row(self, ts_ns: int) -> None:
        """The collector_health row, once per health interval, after the second's grid rows are buffered:
        a failure here (a probe, the buffer) is counted and retried next second and costs no telemetry."""
        bucket = ts_ns // self._health_ns
        if bucket == self._tick.last_health_bucket:
            return
        try:
            self.buffer.append(to_lines([self.health.sample(ts_ns)]))
        except Exception as exc:
            self._tick.health_errors += 1
            self._repeats.hit(f"health_{type(exc).__name__}", "health_row_failed", error=repr(exc))
            return
        self._tick.last_health_bucket = bucket

    def _final_health(self) -> None:
        """One last collector_health row at the last grid second, so the counters of a run's final
        seconds (a rejection just before shutdown, say) are not lost with the process."""
        ts_ns = self._tick.last_ts_ns or self._wall_ns() // self._interval_ns * self._interval_ns
        try:
            self.buffer.append(to_lines([self.health.sample(ts_ns)]))
        except Exception as exc:  # shutdown must go on
            self._log.warning("final_health_failed", error=repr(exc))

    def tick_once(self) -> bool:
        """Emit the current grid second unless it was already emitted; return whether it emitted."""
        now_ns, mono = self._wall_ns(), self._mono_s()
        state = self._tick
        ts_ns = now_ns // self._interval_ns * self._interval_ns
        if state.last_ts_ns is not None:
            jump_s = (now_ns - state.last_wall_ns) / 1e9 - (mono - state.last_mono_s)
            if abs(jump_s) > CLOCK_JUMP_S:
                self._log.warning("clock_jump", jump_s=round(jump_s, 3), at_ns=now_ns)
                if jump_s < -2 * self._interval_ns / 1e9:
                    state.last_ts_ns = None  # stepped back: resume at once (same-timestamp points overwrite)
        state.last_wall_ns, state.last_mono_s = now_ns, mono
        if state.last_ts_ns is not None:
            if ts_ns <= state.last_ts_ns:
                return False  # woke early or late for a second already emitted: never twice
            missed = (ts_ns - state.last_ts_ns) // self._interval_ns - 1
            if missed > 0:
                state.missed += missed
                self._repeats.hit("tick_late", "tick_late", missed_seconds=missed)
        state.last_ts_ns = ts_ns  # whatever happens below, this second is not emitted twice
        with self._polled_lock:
            rows, self._rows = self._rows, []
        try:
            plan = self.plan.drain(ts_ns, mono)
            self.buffer.append(to_lines([*self.grid.snapshot(ts_ns, mono), *self.long_tail.drain(), *rows, *plan]))
        except Exception as exc:  # e.g. disk I/O error: count, log once per kind, keep ticking
            with self._polled_lock:
                self._rows[:0] = rows  # kept for the next second: a forecast issue is not lost to one bad tick
            self.plan.retry()  # a snapshot lost here is written at the next tick that buffers
            state.errors += 1
            self._repeats.hit(type(exc).__name__, "tick_not_buffered", error=repr(exc))
            return False
        state.ticks += 1
        self._health_row(ts_ns)
        self._watch_stillness(mono)
        return True

    def _watch_stillness(self, mono_s: float) -> None:
        """One log line when a device becomes suspect (its fast-moving values stopped changing), one when it
        moves again; the numbers themselves go to the health row and /metrics."""
        unchanged = self.stillness.unchanged_s(mono_s)
        now = set(self.stillness.suspects(mono_s))
        for role in sorted(now - self._suspects):
            self._log.warning(
                "device_suspect",
                role=role,
                unchanged_s=round(unchanged.get(role, 0.0), 1),
                suspect_after_s=self.stillness.after_s,
                hint="none of its fast-moving values changed: its GX service may hang (heartbeat and clock go on)",
            )
        for role in sorted(self._suspects - now):
            self._log.info("device_moving", role=role)
        self._suspects = now

    def _tick_loop(self) -> None:
        while not self._ticker_stop.is_set():
            now_ns = self._wall_ns()
            next_ns = (now_ns // self._interval_ns + 1) * self._interval_ns
            if self._ticker_stop.wait((next_ns - now_ns) / 1e9):
                return
            self.tick_once()

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start /metrics, the sources, the writer and the ticker."""
        c = self.settings.collector
        try:
            self.metrics_port = self.health.serve(c.metrics_host, c.metrics_port)
        except OSError as exc:  # e.g. the port is taken: collecting matters more than the endpoint
            self._log.error(
                "metrics_unavailable",
                host=c.metrics_host,
                port=c.metrics_port,
                error=str(exc),
                action="collecting without /metrics; set collector.metrics_port to a free port",
            )
        for source in self.sources:
            source.start(self._sink)
        self._writer_thread = threading.Thread(
            target=self.writer.run, args=(self._writer_stop,), name="writer", daemon=True
        )
        self._writer_thread.start()
        self._ticker = threading.Thread(target=self._tick_loop, name="ticker", daemon=True)
        self._ticker.start()
        self._log.info(
            "collector_started",
            sources=[s.name for s in self.sources],
            backlog=self.buffer.depth(),
            metrics_port=self.metrics_port,
            buffer_dir=str(c.buffer_dir),
        )

    def stop(self) -> bool:
        """Stop everything; flush within the deadline; return True when the buffer was emptied."""
        timeout_s = self.settings.collector.shutdown_flush_timeout_s
        end = self._mono_s() + timeout_s
        self._log.info("collector_stopping", flush_timeout_s=timeout_s)
        for source in self.sources:
            try:
                source.stop()
            except Exception as exc:
                self._log.warning("source_stop_failed", source=source.name, error=repr(exc))
        self._ticker_stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self.tick_once()  # the final snapshot (skipped when this second was already emitted)
        self._final_health()
        self._writer_stop.set()
        if self._writer_thread is not None:
            self._writer_thread.join(max(0.0, end - self._mono_s()))
        drained = False
        if self._writer_thread is None or not self._writer_thread.is_alive():
            try:
                drained = self.writer.drain(max(0.0, end - self._mono_s()))
            except Exception as exc:
                self._log.warning("drain_failed", error=repr(exc))
        left = self.buffer.depth()
        self.health.close()
        self.buffer.close()
        self._log.info("collector_stopped", flushed=drained, left_in_buffer=left)
        return drained

    def healthy(self) -> bool:
        """For the systemd watchdog: the ticker ticked within a few seconds, and the writer's and every
        source's loop went round recently (a write or a read stuck past its timeout stops the pings)."""
        threads = [self._ticker, self._writer_thread]
        if any(t is None or not t.is_alive() for t in threads):
            return False
        if self._mono_s() - self._tick.last_mono_s >= 3 * self._interval_ns / 1e9 + 2.0:
            return False
        c = self.settings.collector
        if self.writer.loop_age_s() > c.retry_max_s + self.settings.influx.timeout_s + LOOP_GRACE_S:
            return False
        return all(source.loop_age_s() <= SOURCE_LOOP_LIMIT_S for source in self.sources)

    def snapshot(self) -> HealthSnapshot:
        """Current health numbers (the probe behind /metrics and collector_health)."""
        stats = self.buffer.stats()
        writer = self.writer.stats()
        with self._polled_lock:
            polled = dict(self._polled)
        states: dict[str, dict[str, str]] = {}
        counters: dict[str, dict[str, int]] = {}
        for source in self.sources:
            states[source.name] = {k: str(v) for k, v in source.state().items()}
            get = getattr(source, "counters", None)
            counters[source.name] = dict(get()) if callable(get) else {}
        return HealthSnapshot(
            polled=polled,
            buffered=stats.appended,
            written=writer.written,
            rejected=writer.rejected,
            dropped=stats.dropped,
            buffer_depth=stats.depth,
            buffer_oldest_age_s=self.buffer.oldest_age_s(self._wall_ns()),
            buffer_bytes=stats.size_bytes,
            last_write_wall_ns=writer.last_write_wall_ns,
            influx_up=writer.up,
            write_failures=writer.failures,
            source_state=states,
            source_counters=counters,
            ticks=self._tick.ticks,
            ticks_missed=self._tick.missed,
            tick_errors=self._tick.errors,
            health_errors=self._tick.health_errors,
            unchanged_s=self.stillness.unchanged_s(self._mono_s()),
            suspect_after_s=self.stillness.after_s,
            long_tail=self.long_tail.counters(),
            long_tail_capped=self.long_tail.capped_devices(),
        )
