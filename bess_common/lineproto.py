"""Sample -> InfluxDB line protocol, serialized by influxdb-client (never by hand)."""

from __future__ import annotations

from collections.abc import Iterable

from influxdb_client import Point, WritePrecision

from bess_common.sample import Sample


def to_line(sample: Sample) -> str | None:
    """One line of line protocol, or None when the sample has no writable field."""
    fields = sample.finite_fields()
    if not fields:
        return None
    point = Point(sample.measurement)
    for key in sorted(sample.tags):
        value = sample.tags[key]
        if value != "":
            point.tag(key, value)
    for key in sorted(fields):
        point.field(key, fields[key])
    point.time(sample.ts_ns, WritePrecision.NS)
    line: str = point.to_line_protocol()
    return line or None


def to_lines(samples: Iterable[Sample]) -> list[str]:
    """Serialize many samples, skipping those with nothing to write."""
    return [line for line in (to_line(s) for s in samples) if line]
