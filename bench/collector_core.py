"""Pure parts of the collector benchmark: grid completeness, /metrics parsing, latency matching, the ceiling rule."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Completeness:
    """Share of grid seconds present, per (series, field) pair, over a window of `seconds`."""

    seconds: int
    per_field: dict[str, float]

    @property
    def fields(self) -> int:
        """How many (series, field) pairs were seen at least once."""
        return len(self.per_field)

    @property
    def complete_fields(self) -> int:
        """How many pairs were present every second."""
        return sum(1 for v in self.per_field.values() if v >= 1.0)

    @property
    def overall(self) -> float:
        """Present values / expected values over every pair (NaN when nothing was seen)."""
        if not self.per_field:
            return math.nan
        return sum(self.per_field.values()) / len(self.per_field)

    @property
    def minimum(self) -> float:
        """The worst pair's share (NaN when nothing was seen)."""
        return min(self.per_field.values()) if self.per_field else math.nan

    def worst(self, n: int = 5) -> list[tuple[str, float]]:
        """The n least complete pairs below 100 %, worst first."""
        below = [(k, v) for k, v in self.per_field.items() if v < 1.0]
        return sorted(below, key=lambda kv: (kv[1], kv[0]))[:n]


def series_label(measurement: str, tags: Mapping[str, str]) -> str:
    """`battery[device=shunt]`-style label of a series (the site tag left out)."""
    inner = ",".join(f"{k}={v}" for k, v in sorted(tags.items()) if k != "site")
    return f"{measurement}[{inner}]" if inner else measurement


def completeness(counts: Iterable[tuple[str, Mapping[str, int | None]]], seconds: int) -> Completeness:
    """From `count(*)` answers (series label, {count_<field>: n}) the share of `seconds` each field was present.

    A count above `seconds` (duplicate timestamps cannot happen in InfluxDB, but a wrong window could) is capped.
    """
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    per_field: dict[str, float] = {}
    for label, row in counts:
        for column, n in row.items():
            if not column.startswith("count_") or n is None:
                continue
            per_field[f"{label}.{column[len('count_') :]}"] = min(1.0, int(n) / seconds)
    return Completeness(seconds, per_field)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {sample name: value}; labelled samples are summed under their bare name."""
    out: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name_part, _, value_part = line.rpartition(" ")
        name = name_part.split("{", 1)[0].strip()
        try:
            value = float(value_part)
        except ValueError:
            continue
        out[name] = out.get(name, 0.0) + value
    return out


def metric(metrics: Mapping[str, float], name: str) -> float:
    """A counter or gauge by name, with or without the `_total` suffix (NaN when missing)."""
    for key in (name, name + "_total"):
        if key in metrics:
            return metrics[key]
    return math.nan


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)


def match_second(
    observed: Mapping[str, float],
    truth_at: Callable[[int], Mapping[str, float | None]],
    ts_s: int,
    back_s: int = 8,
) -> int | None:
    """The simulator second whose values equal `observed` (the fields of one written row), searching
    [ts_s - back_s, ts_s + 1]. None when no second or more than one second matches (values unchanged
    between seconds cannot tell when the change happened)."""
    found = []
    for s in range(ts_s - back_s, ts_s + 2):
        truth = truth_at(s)
        ok = True
        for name, value in observed.items():
            expected = truth.get(name)
            if expected is None or not _same(float(expected), float(value)):
                ok = False
                break
        if ok:
            found.append(s)
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class Step:
    """One ingest-ceiling step: how much went through and whether the pipeline kept up."""

    cells: int
    lines_per_s: float
    values_per_s: float
    collector_cpu: float
    simulator_cpu: float
    ticks_missed: int
    depth_start: int
    depth_end: int
    lines_per_tick: float
    cell_completeness: float
    cells_seen: int

    @property
    def kept_up(self) -> bool:
        """No missed tick, the buffer did not grow by more than a few ticks, every cell (almost) every second."""
        return not self.behind

    @property
    def behind(self) -> list[str]:
        """Why the step fell behind (empty when it kept up), in plain words."""
        reasons = []
        if self.ticks_missed != 0:
            reasons.append(f"{self.ticks_missed} ticks missed")
        if self.depth_end - self.depth_start > 3 * max(self.lines_per_tick, 1.0):
            reasons.append(f"buffer grew {self.depth_start}->{self.depth_end} lines")
        if self.cells_seen < self.cells:
            reasons.append(f"only {self.cells_seen} of {self.cells} cells seen")
        if not self.cell_completeness >= 0.99:
            reasons.append(f"a cell had only {self.cell_completeness:.1%} of its seconds")
        return reasons


def ceiling(steps: Sequence[Step]) -> Step | None:
    """The largest step that kept up, counting only steps before the first one that fell behind."""
    best = None
    for step in steps:
        if not step.kept_up:
            break
        best = step
    return best


def rate(count: float, seconds: float) -> float:
    """count / seconds (NaN for a non-positive duration)."""
    return count / seconds if seconds > 0 else math.nan
