"""The simulator's PV forecast: shape per the pv_forecast contract, honest error growing with lead, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from bess_common.schema import PV_FORECAST
from collector.simulator.physics import BessPhysics
from collector.simulator.profiles import DAY_S
from collector.simulator.pvforecast import SimPvForecast, pv_forecast_samples

NS = 10**9
DAY = 20_400  # 2025-11-08
T0 = DAY * DAY_S


def _actual_w(fc: SimPvForecast, target_s: int) -> float:
    day, sec = divmod(target_s, DAY_S)
    return float(fc.actual_means_w(day, 3600)[1][sec // 3600])


def test_when_issued_then_hourly_periods_from_the_issue_hour_cover_the_horizon() -> None:
    issued_ns = (T0 + 10 * 3600 + 1234) * NS
    issue = SimPvForecast(BessPhysics(3)).issue(issued_ns, horizon_s=24 * 3600)
    assert issue.provider == "simulator" and issue.issued_ns == issued_ns
    starts = [p.target_ns // NS for p in issue.periods]
    assert starts[0] == T0 + 10 * 3600  # the period containing the issue time
    assert starts == [starts[0] + 3600 * n for n in range(25)]  # up to issue + 24 h
    assert {p.period_s for p in issue.periods} == {3600}
    night = [p.power_w for p in issue.periods if (p.target_ns // NS) % DAY_S // 3600 in (0, 1, 2, 22, 23)]
    assert night and all(w == 0.0 for w in night)  # no sun, no forecast power
    assert max(p.power_w for p in issue.periods) > 500.0


def test_when_same_seed_and_issue_then_same_forecast_and_next_issue_differs() -> None:
    a = SimPvForecast(BessPhysics(3)).issue((T0 + 6 * 3600) * NS)
    b = SimPvForecast(BessPhysics(3)).issue((T0 + 6 * 3600) * NS)
    later = SimPvForecast(BessPhysics(3)).issue((T0 + 7 * 3600) * NS)
    assert a == b
    shared = {p.target_ns: p.power_w for p in a.periods}
    changed = [p for p in later.periods if p.power_w > 0 and shared.get(p.target_ns) != p.power_w]
    assert changed  # a new issue revises the daylight hours it shares with the old one


def test_when_lead_grows_then_the_error_grows_but_is_never_zero() -> None:
    fc = SimPvForecast(BessPhysics(11))
    errors: dict[int, list[float]] = {0: [], 1: [], 2: [], 3: []}  # leads 0-12 h, 12-24, 24-36, 36-48
    for k in range(0, 10 * 24, 3):
        issued_s = T0 + k * 3600
        for p in fc.issue(issued_s * NS).periods:
            target_s = p.target_ns // NS
            actual = _actual_w(fc, target_s)
            if actual > 200.0:  # daylight
                errors[min((target_s - issued_s) // (12 * 3600), 3)].append(abs(p.power_w - actual))
    mae = [float(np.mean(errors[k])) for k in range(4)]
    assert mae == sorted(mae)  # monotone in lead
    assert mae[3] > 2.0 * mae[0]
    assert mae[0] > 20.0  # even the next hour is a forecast, not the actual future


def test_when_short_lead_then_it_tracks_the_actual_clouds() -> None:
    fc = SimPvForecast(BessPhysics(11))
    pairs = []
    for k in range(0, 20 * 24, 24):
        issued_s = T0 + k * 3600 + 6 * 3600
        for p in fc.issue(issued_s * NS, horizon_s=12 * 3600).periods:
            pairs.append((p.power_w, _actual_w(fc, p.target_ns // NS)))
    forecast, actual = np.array(pairs).T
    assert np.corrcoef(forecast, actual)[0, 1] > 0.9


def test_when_backfilling_then_rows_follow_the_contract_in_time_order() -> None:
    rows = list(pv_forecast_samples(BessPhysics(3), T0 * NS + 1, (T0 + 3 * 3600) * NS, 3600, horizon_s=6 * 3600))
    issues = sorted({r.ts_ns for r in rows})
    assert issues == [(T0 + 3600) * NS, (T0 + 7200) * NS]  # multiples of every_s inside [start, end)
    assert [r.ts_ns for r in rows] == sorted(r.ts_ns for r in rows)
    first = [r for r in rows if r.ts_ns == issues[0]]
    assert [r.tags["step"] for r in first] == [str(n) for n in range(6)]  # on the hour: [issue, issue + 6 h)
    assert all(r.measurement == PV_FORECAST and r.tags["provider"] == "simulator" for r in rows)
    assert all(r.tags["site"] == "shop" for r in rows)
    assert all(isinstance(r.fields["target_ns"], int) and isinstance(r.fields["power_w"], float) for r in rows)
    assert first[0].fields["target_ns"] == issues[0] and first[0].fields["period_s"] == 3600


@pytest.mark.parametrize("bad", [{"period_s": 700}, {"horizon_s": 60}])
def test_when_bad_period_or_horizon_then_value_error(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        SimPvForecast(BessPhysics(3)).issue(T0 * NS, **bad)
