"""The record that crosses the boundary from sources/grid to the buffer: one InfluxDB point."""

from __future__ import annotations

import math
from dataclasses import dataclass

FieldValue = float | int | bool | str


@dataclass(frozen=True, slots=True)
class Sample:
    """One row for InfluxDB: measurement, tags, fields, integer-nanosecond UTC timestamp."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    ts_ns: int

    def finite_fields(self) -> dict[str, FieldValue]:
        """Fields with NaN/inf floats removed: those are never written as data."""
        return {k: v for k, v in self.fields.items() if not (isinstance(v, float) and not math.isfinite(v))}
