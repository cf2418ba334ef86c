"""Self-metrics: a Prometheus /metrics endpoint and a `collector_health` row in InfluxDB, from one snapshot.

The agent supplies a `probe()` returning a HealthSnapshot (read from the buffer, the writer, the sources and
its own ticker); this module turns it into metric families on a dedicated CollectorRegistry (never the
global default registry) and into a Sample written through the buffer like any other data.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bess_common.sample import FieldValue, Sample
from bess_common.schema import HEALTH

PREFIX = "bess_collector"
SOURCE_STATES = ("starting", "connected", "stalled", "disconnected", "absent")
_ERROR_WORDS = ("error", "garbage", "timeout", "invalid", "refused", "failed")


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """Everything the health metrics report, at one moment."""

    polled: dict[str, int] = field(default_factory=dict)  # observations received, per source
    buffered: int = 0  # lines appended to the buffer
    written: int = 0  # lines InfluxDB accepted
    rejected: int = 0  # lines set aside as dead letters
    dropped: int = 0  # lines dropped by the buffer size limit
    buffer_depth: int = 0
    buffer_oldest_age_s: float = 0.0
    buffer_bytes: int = 0
    last_write_wall_ns: int = 0  # 0 = never
    influx_up: bool = False
    write_failures: dict[str, int] = field(default_factory=dict)  # by kind
    source_state: dict[str, dict[str, str]] = field(default_factory=dict)  # source -> device/role -> state
    source_counters: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> counter -> value
    ticks: int = 0
    ticks_missed: int = 0
    tick_errors: int = 0
    health_errors: int = 0  # collector_health rows that could not be built or buffered (retried next second)
    unchanged_s: dict[str, float] = field(default_factory=dict)  # role -> since its fast-moving values changed
    suspect_after_s: float = 0.0  # unchanged this long -> suspect (0: detection off)
    long_tail: dict[str, int] = field(default_factory=dict)  # outcome -> count (collector/longtail.py)
    long_tail_capped: dict[str, int] = field(default_factory=dict)  # device -> values refused by the rate caps

    def suspect(self, role: str) -> bool:
        """Whether the role's fast-moving values have not changed for suspect_after_s (a hung service?)."""
        return 0 < self.suspect_after_s <= self.unchanged_s.get(role, 0.0)


def is_error_counter(name: str) -> bool:
    """Source counters that count problems (reported as errors by kind)."""
    return any(word in name for word in _ERROR_WORDS)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def metric_families(snap: HealthSnapshot) -> list[Metric]:
    """The snapshot as Prometheus metric families."""
    out: list[Metric] = [
        _counter("lines_buffered", "Lines accepted by the durable buffer", snap.buffered),
        _counter("lines_written", "Lines InfluxDB accepted", snap.written),
        _counter("lines_rejected", "Lines InfluxDB rejected as bad data (dead letters)", snap.rejected),
        _counter("lines_dropped", "Oldest lines dropped by the buffer size limit", snap.dropped),
        _counter("ticks", "Grid seconds emitted", snap.ticks),
        _counter("ticks_missed", "Grid seconds skipped because a tick came late", snap.ticks_missed),
        _counter("tick_errors", "Grid seconds that could not be buffered", snap.tick_errors),
        _counter("health_errors", "collector_health rows that failed (retried the next second)", snap.health_errors),
        _gauge("buffer_depth_lines", "Lines waiting in the buffer", snap.buffer_depth),
        _gauge("buffer_oldest_age_seconds", "Age of the oldest waiting line", snap.buffer_oldest_age_s),
        _gauge("buffer_size_bytes", "Buffer files on disk", snap.buffer_bytes),
        _gauge(
            "last_write_timestamp_seconds",
            "Unix time of the last successful write (0 = never)",
            snap.last_write_wall_ns / 1e9,
        ),
        _gauge("influx_up", "1 while the last write attempt succeeded", 1.0 if snap.influx_up else 0.0),
    ]
    polled = CounterMetricFamily(f"{PREFIX}_samples_polled", "Observations received, per source", labels=["source"])
    for source, count in sorted(snap.polled.items()):
        polled.add_metric([source], count)
    failures = CounterMetricFamily(
        f"{PREFIX}_write_failures", "Failed InfluxDB write attempts by kind", labels=["kind"]
    )
    for kind, count in sorted(snap.write_failures.items()):
        failures.add_metric([kind], count)
    state = GaugeMetricFamily(
        f"{PREFIX}_source_state",
        "1 for the current connection state of each source/device",
        labels=["source", "device", "state"],
    )
    for source, devices in sorted(snap.source_state.items()):
        for device, current in sorted(devices.items()):
            for name in SOURCE_STATES:
                state.add_metric([source, device, name], 1.0 if current == name else 0.0)
    errors = CounterMetricFamily(f"{PREFIX}_source_errors", "Source problems by kind", labels=["source", "kind"])
    events = CounterMetricFamily(f"{PREFIX}_source_events", "Other source counters", labels=["source", "kind"])
    for source, counters in sorted(snap.source_counters.items()):
        for name, count in sorted(counters.items()):
            (errors if is_error_counter(name) else events).add_metric([source, name], count)
    unchanged = GaugeMetricFamily(
        f"{PREFIX}_device_unchanged_seconds",
        "Seconds since any fast-moving value of the device changed",
        labels=["device"],
    )
    suspect = GaugeMetricFamily(
        f"{PREFIX}_device_suspect",
        "1 while the device's fast-moving values have not changed for collector.suspect_after_s",
        labels=["device"],
    )
    for role, seconds in sorted(snap.unchanged_s.items()):
        unchanged.add_metric([role], seconds)
        suspect.add_metric([role], 1.0 if snap.suspect(role) else 0.0)
    return [*out, polled, failures, state, errors, events, unchanged, suspect, *_long_tail_families(snap)]


def _long_tail_families(snap: HealthSnapshot) -> list[Metric]:
    values = CounterMetricFamily(
        f"{PREFIX}_long_tail_values",
        "Long-tail values by outcome (stored, denied, unchanged, capped, over_max_topics, ...)",
        labels=["outcome"],
    )
    for outcome, count in sorted(snap.long_tail.items()):
        if outcome != "topics":
            values.add_metric([outcome], count)
    capped = CounterMetricFamily(
        f"{PREFIX}_long_tail_capped",
        "Long-tail values refused by the rate caps, per device ('(all)': the whole tail's cap)",
        labels=["device"],
    )
    for device, count in sorted(snap.long_tail_capped.items()):
        capped.add_metric([device], count)
    topics = _gauge("long_tail_topics", "Distinct long-tail topics stored so far", snap.long_tail.get("topics", 0))
    return [values, capped, topics]


def health_fields(snap: HealthSnapshot, now_ns: int) -> dict[str, FieldValue]:
    """The snapshot as `collector_health` fields (flat, numeric)."""
    fields: dict[str, FieldValue] = {
        "lines_buffered": snap.buffered,
        "lines_written": snap.written,
        "lines_rejected": snap.rejected,
        "lines_dropped": snap.dropped,
        "buffer_depth": snap.buffer_depth,
        "buffer_oldest_age_s": float(snap.buffer_oldest_age_s),
        "buffer_bytes": snap.buffer_bytes,
        "influx_up": 1 if snap.influx_up else 0,
        "ticks": snap.ticks,
        "ticks_missed": snap.ticks_missed,
        "tick_errors": snap.tick_errors,
        "health_errors": snap.health_errors,
    }
    if snap.last_write_wall_ns:
        fields["last_write_age_s"] = max(0.0, (now_ns - snap.last_write_wall_ns) / 1e9)
    for source, count in snap.polled.items():
        fields[f"polled_{source}"] = count
    for source, devices in snap.source_state.items():
        fields[f"{source}_connected"] = sum(1 for s in devices.values() if s == "connected")
        fields[f"{source}_devices"] = len(devices)
    for source, counters in snap.source_counters.items():
        fields[f"{source}_errors"] = sum(v for k, v in counters.items() if is_error_counter(k))
    for role, seconds in snap.unchanged_s.items():
        fields[f"{role}_unchanged_s"] = float(seconds)
        fields[f"{role}_suspect"] = 1 if snap.suspect(role) else 0
    fields["suspect_devices"] = sum(1 for role in snap.unchanged_s if snap.suspect(role))
    for outcome in ("stored", "capped"):
        fields[f"long_tail_{outcome}"] = snap.long_tail.get(outcome, 0)
    return fields


class _ProbeCollector(Collector):
    def __init__(self, probe: Callable[[], HealthSnapshot]) -> None:
        self._probe = probe

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(self._probe())


class Health:
    """Metrics registry, /metrics server and the collector_health sample, all fed by one probe."""

    def __init__(self, site: str, probe: Callable[[], HealthSnapshot], host: str | None = None) -> None:
        self.site = site
        self.host = host or socket.gethostname()
        self._probe = probe
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_ProbeCollector(probe))
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def sample(self, ts_ns: int) -> Sample:
        """The `collector_health` row for this moment (tags site, host)."""
        return Sample(HEALTH, {"site": self.site, "host": self.host}, health_fields(self._probe(), ts_ns), ts_ns)

    def serve(self, bind_host: str, port: int) -> int:
        """Start /metrics on a daemon thread (port 0 = disabled); return the port, or 0 when disabled."""
        if port == 0:
            return 0
        self._server, self._thread = start_http_server(port, addr=bind_host, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        """Stop the /metrics server."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
