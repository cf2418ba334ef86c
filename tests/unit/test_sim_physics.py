"""The simulator's physics and truth: determinism, backfill == live, conservation, thermal, regimes."""

from __future__ import annotations

import numpy as np
import pytest

from collector.simulator.battery import balance_flags
from collector.simulator.physics import CAPACITY_AH, R_EXTERNAL_OHM, BessPhysics
from collector.simulator.profiles import DAY_S, ocv_v
from collector.simulator.truth import Truth

DAY = 20_400  # 2025-11-08, a Saturday
T0 = DAY * DAY_S


@pytest.fixture(scope="module")
def truth() -> Truth:
    """One simulated week (seed 7), shared by the tests of this module."""
    return Truth(BessPhysics(7, cache_days=8), cache_days=8)


def test_when_same_seed_then_same_values_and_different_seed_then_different() -> None:
    a, b, c = Truth(BessPhysics(1)), Truth(BessPhysics(1)), Truth(BessPhysics(2))
    for t in (T0 + 5, T0 + 43_210):
        assert a.values_at(t) == b.values_at(t)
    differing = [k for k, v in a.values_at(T0 + 43_210).items() if c.values_at(T0 + 43_210)[k] != v]
    assert ("shunt", "/Dc/0/Voltage") in differing
    assert ("bms", "/Voltages/Cell1") in differing


def test_when_computed_cold_or_after_other_days_then_the_second_is_identical() -> None:
    t = T0 + 61_234
    warm = Truth(BessPhysics(5, cache_days=1), cache_days=1)
    for day in (DAY - 1, DAY + 1):  # other days computed first, the cache evicted
        warm.columns(day)
    cold = Truth(BessPhysics(5)).values_at(t)  # the live simulator asking for "now"
    assert warm.values_at(t) == cold


def test_when_days_join_then_soc_has_no_jump_at_midnight(truth: Truth) -> None:
    for day in range(DAY, DAY + 5):
        before = truth.physics.day_arrays(day).soc[-1]
        after = truth.physics.day_arrays(day + 1).soc[0]
        assert abs(after - before) < 0.002


def test_when_integrating_the_shunt_current_then_soc_follows(truth: Truth) -> None:
    start = T0 + DAY_S + 8 * 3600
    currents = [truth.values_at(t)[("shunt", "/Dc/0/Current")] for t in range(start, start + 3600)]
    soc0 = truth.values_at(start - 1)[("shunt", "/Soc")]
    soc1 = truth.values_at(start + 3599)[("shunt", "/Soc")]
    expected_pct = sum(currents) / 3600.0 / CAPACITY_AH * 100.0  # type: ignore[arg-type]
    assert soc1 - soc0 == pytest.approx(expected_pct, abs=0.15)  # type: ignore[operator]
    assert abs(expected_pct) > 0.5  # the hour really moved the SoC


def test_when_current_flows_then_pack_voltage_is_cells_plus_ir_drop(truth: Truth) -> None:
    arrays = truth.physics.day_arrays(DAY + 2)
    busy = int(np.argmax(np.abs(arrays.current_a)))
    v = truth.values_at((DAY + 2) * DAY_S + busy)
    cells = sum(v[("bms", f"/Voltages/Cell{n}")] for n in range(1, 17))  # type: ignore[misc]
    current = v[("shunt", "/Dc/0/Current")]
    assert abs(current) > 20  # type: ignore[arg-type]
    assert v[("shunt", "/Dc/0/Voltage")] == pytest.approx(cells + current * R_EXTERNAL_OHM, abs=0.02)  # type: ignore[operator]
    # each cell sits off its open-circuit voltage by I*R in the direction of the current
    p = truth.physics.params
    soc = arrays.soc[busy]
    cell_soc = 1.0 - ((1.0 - soc) * CAPACITY_AH + p.offset_ah) / p.capacity_ah
    drop = arrays.cell_v[:, busy] - ocv_v(cell_soc)
    assert np.all(np.sign(drop) == np.sign(arrays.current_a[busy]))


def test_when_current_doubles_then_steady_heating_quadruples() -> None:
    physics = BessPhysics(3)
    ambient = np.full(DAY_S, 20.0)
    rises = [
        float((physics.cell_temperatures(np.full(DAY_S, amps), ambient)[:, -1] - 20.0).mean())
        for amps in (0.0, 50.0, 100.0)
    ]
    assert abs(rises[0]) < 0.05
    assert rises[2] / rises[1] == pytest.approx(4.0, rel=0.1)


def test_when_a_week_is_generated_then_it_has_quiet_and_cycling_blocks(truth: Truth) -> None:
    quiet = cycling = 0
    for day in range(DAY, DAY + 7):
        arrays = truth.physics.day_arrays(day)
        power_w = np.abs(arrays.current_a * arrays.pack_v).reshape(-1, 900).mean(axis=1)  # 15 min blocks
        quiet += int(np.sum(power_w < 100.0))
        cycling += int(np.sum(power_w > 1000.0))
        parked = arrays.regime == 0
        assert np.all(np.abs(arrays.current_a[parked]) < 0.5)
    assert quiet >= 20
    assert cycling >= 20


def test_when_cells_are_above_the_knee_then_only_the_highest_balance() -> None:
    volts = np.array([[3.30, 3.46, 3.50], [3.31, 3.47, 3.40], [3.29, 3.40, 3.49]])  # 3 cells x 3 seconds
    flags = balance_flags(volts)
    assert flags.tolist() == [[0, 1, 1], [0, 1, 0], [0, 0, 1]]  # within 15 mV of the top and above 3.45 V


def test_when_a_pack_is_charged_full_then_the_simulation_balances(truth: Truth) -> None:
    days = [d for d in range(DAY, DAY + 7) if truth.physics.day_arrays(d).cell_v.max() > 3.46]
    assert days
    cols = truth.columns(days[0])
    i = int(np.argmax(cols[("bms", "/System/MaxCellVoltage")]))
    flags = [cols[("bms", f"/Balances/Cell{n}")][i] for n in range(1, 17)]
    volts = [cols[("bms", f"/Voltages/Cell{n}")][i] for n in range(1, 17)]
    assert flags[int(np.argmax(volts))] == 1
    assert cols[("bms", "/Balancing")][i] == 1
    assert cols[("bms", "/System/MaxVoltageCellId")][i] == f"C{int(np.argmax(volts)) + 1}"


def test_when_charging_then_time_to_go_is_invalid_and_consumed_ah_is_negative(truth: Truth) -> None:
    arrays = truth.physics.day_arrays(DAY + 1)
    charging = int(np.flatnonzero(arrays.current_a > 5)[10])
    discharging = int(np.flatnonzero(arrays.current_a < -5)[100])
    v_charge = truth.values_at((DAY + 1) * DAY_S + charging)
    v_dis = truth.values_at((DAY + 1) * DAY_S + discharging)
    assert v_charge[("shunt", "/TimeToGo")] is None
    assert v_dis[("shunt", "/TimeToGo")] > 0  # type: ignore[operator]
    assert v_charge[("shunt", "/ConsumedAmphours")] < 0  # type: ignore[operator]


def test_shunt_values_carry_float32_artefacts(truth: Truth) -> None:
    values = [truth.values_at(T0 + s)[("shunt", "/Dc/0/Voltage")] for s in range(0, 600, 7)]
    assert all(float(np.float32(v)) == v for v in values if isinstance(v, float))
    assert all(isinstance(v, float) for v in values)
    assert any(len(repr(v)) > 8 for v in values)  # e.g. 52.310001373291016, not 52.31
