"""The rate transform: cumulative energy counters -> mean power in W, resets and bad order skipped."""

from __future__ import annotations

import pytest

from bess_common.errors import ConfigError
from bess_common.sample import Sample
from collector.importers.mapping import build_mapping
from collector.importers.rate import RateStage
from collector.importers.records import Skipped

T = 1_700_000_000 * 10**9
H = 3600 * 10**9


def _stage(**extra: object) -> RateStage:
    entry = {"source": "sensor.pv_total", "target": "system.pv_w", "transform": "rate", "counter_unit": "kWh"}
    return RateStage(build_mapping({"map": [{**entry, **extra}]}, []).map)


def _reading(ts_ns: int, kwh: float, **fields: float) -> tuple[str, Sample]:
    return "pv.csv", Sample("system", {"site": "s"}, {"pv_w": kwh, **fields}, ts_ns)


# readings (time, kWh) -> expected (time, W) samples and skipped reasons
CASES = [
    ([(0, 10.0)], [], []),  # one reading: no interval yet
    ([(0, 10.0), (H, 11.5)], [(0, 1500.0)], []),  # 1.5 kWh in an hour, stamped at the interval's start
    ([(0, 10.0), (H // 2, 10.5), (H, 10.5)], [(0, 1000.0), (H // 2, 0.0)], []),  # a flat counter: 0 W
    ([(0, 10.0), (H, 0.2), (2 * H, 1.2)], [(H, 1000.0)], ["went down (reset)"]),  # a daily counter at midnight
    ([(0, 10.0), (0, 10.5), (H, 11.5)], [(0, 1000.0)], ["not later than the previous"]),
]


@pytest.mark.parametrize(("readings", "powers", "skipped"), CASES)
def test_when_counter_readings_pass_then_each_interval_becomes_its_mean_power(
    readings: list[tuple[int, float]], powers: list[tuple[int, float]], skipped: list[str]
) -> None:
    out = [item for _, item in _stage().process(_reading(T + t, v) for t, v in readings)]
    got = [(s.ts_ns - T, s.fields["pv_w"]) for s in out if isinstance(s, Sample)]
    assert got == [(t, pytest.approx(w)) for t, w in powers]
    reasons = [i.reason for i in out if isinstance(i, Skipped)]
    assert len(reasons) == len(skipped)
    assert all(want in got_reason for want, got_reason in zip(skipped, reasons, strict=True))


def test_when_the_map_has_scale_and_sign_then_they_apply_to_the_power() -> None:
    stage = _stage(sign=-1, scale=0.5)
    out = [i for _, i in stage.process([_reading(T, 1.0), _reading(T + H, 3.0)])]
    assert out == [Sample("system", {"site": "s"}, {"pv_w": -1000.0}, T)]


def test_when_a_sample_carries_other_fields_then_they_pass_unchanged() -> None:
    out = [i for _, i in _stage().process([_reading(T, 1.0, battery_soc_pct=50.0)])]
    assert out == [Sample("system", {"site": "s"}, {"battery_soc_pct": 50.0}, T)]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"transform": "rate"}, "needs counter_unit"),
        ({"transform": "rate", "counter_unit": "kWh", "target": "system.battery_soc_pct"}, "not a power field"),
        ({"counter_unit": "kWh"}, "only used with"),
        ({"transform": "rate", "counter_unit": "GWh"}, "counter_unit"),
    ],
)
def test_when_a_rate_map_is_incomplete_then_the_mapping_is_rejected(entry: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_mapping({"map": [{"source": "x", "target": "system.pv_w", **entry}]}, [])
    assert any(problem in p for p in err.value.problems), err.value.problems


def test_when_a_rate_target_is_fed_by_another_source_too_then_the_mapping_is_rejected() -> None:
    rate = {"source": "x", "target": "system.pv_w", "transform": "rate", "counter_unit": "Wh"}
    with pytest.raises(ConfigError) as err:
        build_mapping({"map": [rate, {"source": "y", "target": "system.pv_w"}]}, [])
    assert "is a rate of x and cannot also come from ['y']" in err.value.problems[0]
