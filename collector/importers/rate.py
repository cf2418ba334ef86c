"""The rate transform: cumulative energy counters (kWh totals) -> mean power in W. Pure.

A map with `transform = "rate"` lets the parser pass the counter reading on unchanged; this stage then
replaces each reading with the mean power since the previous reading of the same series (measurement,
tags, field), in input order:

- power = (reading - previous) in Wh * 3600 / seconds between them, then the map's scale, offset, sign;
- stamped at the PREVIOUS reading's time: it is the mean power from then until this reading, which is
  what a value means in a state-change recording (it holds until the next one);
- the first reading of a series gives no power (there is no interval yet);
- a reading below the previous one is a counter reset (a daily counter at midnight, a replaced meter):
  that interval gives no power (when in it the reset happened is unknown) and is reported as skipped;
- a reading not later than the previous one is reported as skipped; the next interval starts from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from bess_common.sample import FieldValue, Sample
from bess_common.timefmt import iso_utc
from collector.importers.mapping import FieldMap
from collector.importers.records import Parsed, Skipped

NS = 1_000_000_000
_SeriesKey = tuple[str, tuple[tuple[str, str], ...], str]


class RateStage:
    """Applies the rate maps of a mapping to a stream of (file, item) pairs; one per import."""

    def __init__(self, maps: Sequence[FieldMap]) -> None:
        self._maps = {(m.measurement, m.field, tuple(sorted(m.tags.items()))): m for m in maps if m.transform == "rate"}
        self._last: dict[_SeriesKey, tuple[int, float]] = {}

    @property
    def active(self) -> bool:
        """True when the mapping has a rate map (otherwise the stage is not needed)."""
        return bool(self._maps)

    def process(self, items: Iterable[tuple[str, Parsed]]) -> Iterator[tuple[str, Parsed]]:
        """The same stream, counter readings replaced by powers (or Skipped)."""
        for file, item in items:
            if not isinstance(item, Sample):
                yield file, item
                continue
            yield from ((file, out) for out in self._sample(item, file))

    def _map_of(self, sample: Sample, field: str) -> FieldMap | None:
        extra = tuple(sorted((k, v) for k, v in sample.tags.items() if k != "site"))
        return self._maps.get((sample.measurement, field, extra))

    def _sample(self, sample: Sample, file: str) -> Iterator[Parsed]:
        plain: dict[str, FieldValue] = {}
        for field, value in sample.fields.items():
            fmap = self._map_of(sample, field)
            if fmap is None or isinstance(value, str):
                plain[field] = value
                continue
            yield from self._reading(sample, field, float(value), fmap, file)
        if plain:
            yield Sample(sample.measurement, sample.tags, plain, sample.ts_ns)

    def _reading(self, sample: Sample, field: str, value: float, fmap: FieldMap, file: str) -> Iterator[Parsed]:
        key = (sample.measurement, tuple(sorted(sample.tags.items())), field)
        previous = self._last.get(key)
        self._last[key] = (sample.ts_ns, value)
        if previous is None:
            return
        prev_ns, prev_value = previous
        where = f"{file} at {iso_utc(sample.ts_ns)}"
        if sample.ts_ns <= prev_ns:
            yield Skipped(0, f"counter {fmap.source}: reading not later than the previous one (no rate)", where)
        elif value < prev_value:
            yield Skipped(0, f"counter {fmap.source} went down (reset): no rate over that interval", where)
        else:
            power = fmap.rate_w(value - prev_value, (sample.ts_ns - prev_ns) / NS)
            yield Sample(sample.measurement, sample.tags, {field: power}, prev_ns)
