"""Duplicate timestamps within one import: counted, with and without a different value, series by series."""

from __future__ import annotations

import pytest

from bess_common.sample import Sample
from collector.importers.duplicates import DuplicateFinder

T = 1_700_000_000 * 10**9


def _s(ts_s: int, value: float, field: str = "pv_w", site: str = "a") -> Sample:
    return Sample("system", {"site": site}, {field: value}, T + ts_s * 10**9)


# (samples in input order) -> (repeats, of which with a different value)
CASES = [
    ([_s(0, 1), _s(1, 1), _s(2, 1)], 0, 0),
    ([_s(0, 1), _s(0, 1)], 1, 0),  # the same row twice: harmless
    ([_s(0, 1), _s(0, 2)], 1, 1),  # a different value: the earlier is lost
    ([_s(0, 1), _s(0, 2), _s(0, 3)], 2, 2),
    ([_s(5, 1), _s(0, 1), _s(5, 2), _s(0, 1)], 2, 1),  # out of order
    ([_s(0, 1), _s(0, 1, field="battery_soc_pct")], 0, 0),  # another field: not a repeat
    ([_s(0, 1), _s(0, 1, site="b")], 0, 0),  # another series: not a repeat
]


@pytest.mark.parametrize(("samples", "count", "differing"), CASES)
def test_when_series_and_time_repeat_then_each_repeat_is_counted(
    samples: list[Sample], count: int, differing: int
) -> None:
    finder = DuplicateFinder()
    for sample in samples:
        finder.add(sample, "f.csv")
    found = finder.find()
    assert (found.count, found.differing) == (count, differing)
    assert len(found.examples) == min(count, 5)


def test_when_repeats_are_reported_then_the_example_names_series_time_and_file() -> None:
    finder = DuplicateFinder()
    finder.add(_s(0, 1), "a.csv")
    finder.add(_s(0, 2), "b.csv")
    assert finder.find().examples == ["system[site=a] pv_w at 2023-11-14T22:13:20Z in b.csv"]
