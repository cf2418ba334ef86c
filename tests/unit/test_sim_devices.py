"""The simulated inverter/charger, solar chargers and grid meter agree with the system totals the simulator
computes: AC in = grid, AC out = consumption, the Multi's DC power = /Dc/Vebus/Power, the MPPTs' sum = PV."""

from __future__ import annotations

from collector.simulator.devices import DEVICES
from collector.simulator.modbus_server import simulated_units
from collector.simulator.mqtt_publisher import ROLE_TOPIC
from collector.simulator.physics import BessPhysics
from collector.simulator.truth import Truth

DAY0_S = 1_800_000_000 // 86_400 * 86_400


def test_every_second_of_a_day_the_devices_add_up_to_the_system_totals() -> None:
    truth = Truth(BessPhysics(7, 8), "p")
    seen_charging = seen_inverting = seen_pv = False
    for t_s in range(DAY0_S, DAY0_S + 86_400, 97):
        v = truth.values_at(t_s)
        grid = v[("system", "/Ac/Grid/L1/Power")]
        assert v[("vebus", "/Ac/ActiveIn/L1/P")] == grid == v[("grid", "/Ac/L1/Power")] == v[("grid", "/Ac/Power")]
        assert v[("vebus", "/Ac/Out/L1/P")] == v[("system", "/Ac/Consumption/L1/Power")]
        dc_w = v[("vebus", "/Dc/0/Power")]
        assert dc_w == v[("system", "/Dc/Vebus/Power")]
        pv = [v[(role, "/Yield/Power")] for role in ("mppt1", "mppt2")]
        assert sum(pv) == v[("system", "/Dc/Pv/Power")]  # type: ignore[arg-type]
        for role, power in zip(("mppt1", "mppt2"), pv, strict=True):
            pv_v, pv_a = v[(role, "/Pv/V")], v[(role, "/Pv/I")]
            assert abs(float(pv_v) * float(pv_a) - float(power)) <= 0.05 * float(pv_v) + 1e-9  # type: ignore[arg-type]
        state = v[("vebus", "/State")]
        assert state == (3 if float(dc_w) > 30 else 9 if float(dc_w) < -30 else 8)  # type: ignore[arg-type]
        seen_charging |= state == 3
        seen_inverting |= state == 9
        seen_pv |= float(pv[0]) > 0  # type: ignore[arg-type]
    assert seen_charging and seen_inverting and seen_pv, "the day covers charging, inverting and sun"


def test_the_devices_are_published_under_their_service_and_instance() -> None:
    for role, (service, instance) in DEVICES.items():
        assert ROLE_TOPIC[role] == f"{service}/{instance}"


def test_as_a_multi_rs_the_inverter_has_the_same_physics_under_the_multi_service_paths() -> None:
    vebus, multi = Truth(BessPhysics(7, 8), "p"), Truth(BessPhysics(7, 8), "p", inverter="multi")
    for t_s in range(DAY0_S, DAY0_S + 86_400, 997):
        a, b = vebus.values_at(t_s), multi.values_at(t_s)
        assert not any(role == "multi" for role, _ in a) and not any(role == "vebus" for role, _ in b)
        assert b[("multi", "/Ac/In/1/L1/P")] == a[("vebus", "/Ac/ActiveIn/L1/P")] == b[("system", "/Ac/Grid/L1/Power")]
        assert b[("multi", "/Ac/Out/L1/P")] == b[("system", "/Ac/Consumption/L1/Power")]
        assert b[("multi", "/Dc/0/Power")] == b[("system", "/Dc/Vebus/Power")] == a[("vebus", "/Dc/0/Power")]
        assert b[("multi", "/State")] == a[("vebus", "/State")]
        # single-phase: L2/L3 are published as invalid (so a Modbus 0 is not taken for a value while MQTT is on)
        assert a[("vebus", "/Ac/ActiveIn/L2/P")] is None and b[("multi", "/Ac/In/1/L3/V")] is None
    assert ROLE_TOPIC["multi"] == "multi/0"


def test_each_simulated_device_is_served_over_modbus_on_the_unit_id_of_its_instance() -> None:
    assert simulated_units("vebus")[227] == {"vebus": "vebus"}
    assert simulated_units("vebus")[226] == {"solarcharger": "mppt1"}
    assert simulated_units("vebus")[215] == {"solarcharger": "mppt2"}
    assert simulated_units("vebus")[30] == {"grid": "grid"}
    assert "multi" not in simulated_units("vebus")[100]
    assert simulated_units("multi")[100]["multi"] == "multi" and 227 not in simulated_units("multi")
