"""Duplicate timestamps of an import: samples whose series (measurement, tags, fields) and time repeat an
earlier one. InfluxDB keeps one point per series and time, the last written, so each such sample overwrote
(or repeated) another. Pure; numpy for the final sort.

Memory: 18 bytes per sample (timestamp, value hash, file index), e.g. ~70 MB for the 3.9 million samples of
the whole Pylontech archive. The series key includes the set of field names, so a sample with fewer fields
(e.g. a Pylontech row without a current) is compared with its own kind only.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import numpy as np

from bess_common.sample import Sample
from bess_common.timefmt import iso_utc

EXAMPLES = 5
_Key = tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]]


@dataclass(frozen=True)
class Duplicates:
    """What the finder saw: how many samples repeat an earlier series and time, how many of those with a
    different value (the earlier value is lost), and where the first few are."""

    count: int = 0
    differing: int = 0
    examples: list[str] = field(default_factory=list)


class _Series:
    __slots__ = ("files", "hashes", "times")

    def __init__(self) -> None:
        self.times = array("q")
        self.hashes = array("q")
        self.files = array("H")


class DuplicateFinder:
    """Collects (series, time, value) of every sample; `find` reports the repeats."""

    def __init__(self) -> None:
        self._series: dict[_Key, _Series] = {}
        self._files: list[str] = []
        self._file_index: dict[str, int] = {}

    def add(self, sample: Sample, file: str) -> None:
        """Remember one sample (in input order)."""
        names = tuple(sorted(sample.fields))
        key = (sample.measurement, tuple(sorted(sample.tags.items())), names)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        index = self._file_index.get(file)
        if index is None:
            index = self._file_index[file] = min(len(self._files), 0xFFFF)
            self._files.append(file)
        series.times.append(sample.ts_ns)
        series.hashes.append(hash(tuple(map(sample.fields.__getitem__, names))))
        series.files.append(index)

    def find(self) -> Duplicates:
        """Every sample whose series and time an earlier sample already had."""
        count = differing = 0
        found: list[tuple[int, str]] = []  # (time, text) of the repeats, for the first examples
        for key, series in self._series.items():
            times = np.frombuffer(series.times, dtype=np.int64)
            if times.size < 2:
                continue
            order = np.argsort(times, kind="stable")  # equal times keep input order: later = the repeat
            ordered = times[order]
            repeat = ordered[1:] == ordered[:-1]
            if not repeat.any():
                continue
            hashes = np.frombuffer(series.hashes, dtype=np.int64)[order]
            changed = repeat & (hashes[1:] != hashes[:-1])
            count += int(repeat.sum())
            differing += int(changed.sum())
            for j in order[1:][repeat][:EXAMPLES]:
                found.append((int(times[j]), self._describe(key, int(times[j]), series.files[j])))
        found.sort()
        return Duplicates(count, differing, [text for _, text in found[:EXAMPLES]])

    def _describe(self, key: _Key, ts_ns: int, file_index: int) -> str:
        measurement, tags, fields = key
        stamp = iso_utc(ts_ns, 9, trim=True)
        tag_text = ",".join(f"{k}={v}" for k, v in tags)
        return f"{measurement}[{tag_text}] {'+'.join(fields)} at {stamp} in {self._files[file_index]}"
