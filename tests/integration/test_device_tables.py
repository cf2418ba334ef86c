"""The inverter/charger, solar chargers and grid meter as first-class tables, end to end, over each transport:
the simulated GX offers a Multi (vebus/276, or a Multi RS as multi/0), solar chargers 279 and 280 and grid
meter 30, over a real mosquitto (MQTT only), over its Modbus server (Modbus only, each device on the unit id
of its instance, as [gx] modbus_devices names them) or both; the collector (a subprocess) lands `inverter`,
`solarcharger` and `meter` rows every second in a real influxd, tagged by instance. Every value is the
simulator's truth for a second it could have been sampled at (over Modbus within half a register step), and
in InfluxDB the devices add up to the system totals of the same second."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bess_common.influx import InfluxClient
from collector.gx import tables
from collector.simulator.devices import DEVICES
from collector.simulator.gx import GxSimulator
from deploy.localservices import InfluxServer, MosquittoServer
from tests.integration.pipeline import SECOND_NS, CollectorProcess, whole_seconds, write_config
from tests.integration.test_collector_end_to_end import _matches_truth, _rows
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

WINDOW_S = 12
MODBUS_DEVICES = ("vebus/276", "multi/0", "solarcharger/279", "solarcharger/280", "grid/30")
# the inverter's stored fields -> its D-Bus path, per service (the same physics under either)
INVERTER_PATHS = {
    "vebus": {
        "ac_in_l1_w": "/Ac/ActiveIn/L1/P",
        "ac_in_l1_v": "/Ac/ActiveIn/L1/V",
        "ac_out_l1_w": "/Ac/Out/L1/P",
        "dc_voltage_v": "/Dc/0/Voltage",
        "dc_current_a": "/Dc/0/Current",
        "state": "/State",
    },
    "multi": {
        "ac_in_l1_w": "/Ac/In/1/L1/P",
        "ac_in_l1_v": "/Ac/In/1/L1/V",
        "ac_out_l1_w": "/Ac/Out/L1/P",
        "dc_voltage_v": "/Dc/0/Voltage",
        "dc_current_a": "/Dc/0/Current",
        "state": "/State",
    },
}
# Over MQTT only: the inverter's DC power has no register on either service; a PV voltage of 0 (at night)
# reads as "invalid" over Modbus, as every 0 V does (collector/gx/decode.py), so it is checked over MQTT.
MQTT_ONLY = {"vebus": {"dc_power_w": "/Dc/0/Power"}, "multi": {"dc_power_w": "/Dc/0/Power"}, "mppt1": {"pv_v": "/Pv/V"}}
DEVICE_FIELDS = {
    "mppt1": {"pv_w": "/Yield/Power", "battery_a": "/Dc/0/Current", "state": "/State"},
    "mppt2": {"pv_w": "/Yield/Power", "state": "/State"},
    "grid": {"l1_w": "/Ac/L1/Power", "l1_v": "/Ac/L1/Voltage"},
}
MEASUREMENT = {"solarcharger": "solarcharger", "grid": "meter", "vebus": "inverter", "multi": "inverter"}


def tolerance(service: str, path: str, transport: str) -> float:
    """Over MQTT the value is exact (to float noise); over Modbus (or either) within half a step of its register."""
    reg = tables.register_by_path(service).get(path)
    if transport == "mqtt" or reg is None:
        return 1e-6
    return 0.5 / abs(reg.scale) + 1e-6


def tables_for(inverter: str, transport: str) -> dict[tuple[str, str, str], dict[str, tuple[str, float]]]:
    """(measurement, where, simulator role) -> {field: (D-Bus path, tolerance)} for this GX and transport."""
    out = {}
    for role, common in ((inverter, INVERTER_PATHS[inverter]), *DEVICE_FIELDS.items()):
        service, instance = DEVICES[role]
        fields = common if transport == "modbus" else {**common, **MQTT_ONLY.get(role, {})}
        device = "" if service == "solarcharger" else f"device = '{service}' AND "
        where = f"{device}instance = '{instance}'"
        out[(MEASUREMENT[service], where, role)] = {
            name: (path, tolerance(service, path, transport)) for name, path in fields.items()
        }
    return out


# (inverter service, transport): each inverter over each transport, and both transports at once (MQTT preferred)
CASES = [("vebus", "mqtt"), ("multi", "mqtt"), ("vebus", "modbus"), ("multi", "modbus"), ("vebus", "both")]


@pytest.fixture(params=CASES, ids=[f"{i}-{t}" for i, t in CASES])
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    inverter, transport = request.param
    return str(inverter), str(transport)


@pytest.fixture
def inverter(case: tuple[str, str]) -> str:
    return case[0]


@pytest.fixture
def transport(case: tuple[str, str]) -> str:
    return case[1]


@pytest.fixture
def gx(mosquitto: MosquittoServer, inverter: str, transport: str) -> Iterator[GxSimulator]:
    mqtt_port = mosquitto.port if transport != "modbus" else None
    modbus_port = 0 if transport != "mqtt" else None
    sim = GxSimulator(seed=21, modbus_port=modbus_port, mqtt_port=mqtt_port, cells=4, inverter=inverter).start()
    yield sim
    sim.stop()


def _number(row: dict[str, object], name: str) -> float:
    return float(str(row[name]))


def test_the_inverter_two_mppts_and_the_grid_meter_land_each_second_matching_truth_and_the_system_totals(
    influx_server: InfluxServer,
    influx: InfluxClient,
    mosquitto: MosquittoServer,
    gx: GxSimulator,
    tmp_path: Path,
    *,
    inverter: str,
    transport: str,
) -> None:
    config = write_config(
        tmp_path / "c.toml", influx_server.url, buffer_dir=tmp_path / "buffer", portal_id=gx.portal_id,
        modbus_port=gx.modbus_port if transport != "mqtt" else None,
        mqtt_port=mosquitto.port if transport != "modbus" else None,
        modbus_devices=MODBUS_DEVICES if transport != "mqtt" else (),
    )  # fmt: skip
    collector = CollectorProcess(config, tmp_path / "collector.log").start()
    try:
        since = time.time_ns()
        wait_until(
            lambda: (
                len(influx.query(f"SELECT count(pv_w) FROM solarcharger WHERE time >= {since} GROUP BY instance")) == 2
            ),
            60,
            "rows of both solar chargers",
        )
        start = (time.time_ns() // SECOND_NS + 1) * SECOND_NS
        end = start + WINDOW_S * SECOND_NS
        time.sleep((end - time.time_ns()) / 1e9 + 2.5)
    finally:
        code = collector.stop()
    assert code == 0, collector.log()[-3000:]
    window = set(whole_seconds(start, end))
    where = f"time >= {start} AND time < {end}"
    for (measurement, which, role), fields in tables_for(inverter, transport).items():
        rows = _rows(influx, f"SELECT * FROM {measurement} WHERE {which} AND {where}")
        complete = {int(str(r["time"])): r for r in rows if all(r.get(f) is not None for f in fields)}
        assert set(complete) == window, f"{role}: seconds missing {sorted(window - set(complete))[:5]}"
        for t_ns, row in complete.items():
            for name, (path, tol) in fields.items():
                value, age_s = _number(row, name), _number(row, "age_s")
                assert _matches_truth(gx, role, path, t_ns // SECOND_NS, value=value, age_s=age_s, tol=tol), (
                    role, name, t_ns, value,
                )  # fmt: skip
    # the other inverter service is not there, so it has no rows
    other = next(s for s in INVERTER_PATHS if s != inverter)
    assert _rows(influx, f"SELECT * FROM inverter WHERE device = '{other}' AND {where}") == []
    if transport == "both":  # the single-phase Multi's L2/L3: invalid over MQTT, 0 over Modbus -> never stored
        l2 = _rows(influx, f"SELECT ac_in_l2_w, ac_out_l3_a FROM inverter WHERE {where}")
        assert all(r.get("ac_in_l2_w") is None and r.get("ac_out_l3_a") is None for r in l2), l2[:2]
    _check_the_devices_add_up_to_the_system_totals(influx, where, tolerance(inverter, "/Dc/0/Current", transport))


def _check_the_devices_add_up_to_the_system_totals(influx: InfluxClient, where: str, amps_tol: float) -> None:
    """In InfluxDB, second by second: the MPPTs' PV = pv_dc_w, the grid meter = grid_l1_w, the Multi's AC in
    = grid_l1_w and AC out = load_l1_w (within a 16-bit register's 10 W step over Modbus), and its DC side
    V x I = what the battery takes + the DC loads - the PV (the Multi's DC power, from the system's fields)."""
    fields = "pv_dc_w, grid_l1_w, load_l1_w, battery_power_w, dc_system_power_w"
    system = {int(str(r["time"])): r for r in _rows(influx, f"SELECT {fields} FROM system WHERE {where}")}
    mppts = _rows(influx, f"SELECT pv_w FROM solarcharger WHERE {where} GROUP BY instance")
    meter = {int(str(r["time"])): r for r in _rows(influx, f"SELECT l1_w FROM meter WHERE {where}")}
    multi = {int(str(r["time"])): r for r in _rows(influx, f"SELECT * FROM inverter WHERE {where}")}
    agree = {"pv": 0, "meter": 0, "ac_in": 0, "ac_out": 0, "dc": 0}
    for t_ns, row in system.items():  # (a second may pair values sampled a message apart: most seconds, not all)
        if any(row.get(f) is None for f in fields.split(", ")) or t_ns not in meter or t_ns not in multi:
            continue
        pv = [_number(r, "pv_w") for r in mppts if int(str(r["time"])) == t_ns]
        inv = multi[t_ns]
        agree["pv"] += len(pv) == 2 and sum(pv) == _number(row, "pv_dc_w")
        agree["meter"] += _number(meter[t_ns], "l1_w") == _number(row, "grid_l1_w")
        agree["ac_in"] += abs(_number(inv, "ac_in_l1_w") - _number(row, "grid_l1_w")) <= 5
        agree["ac_out"] += abs(_number(inv, "ac_out_l1_w") - _number(row, "load_l1_w")) <= 5
        dc_w = _number(row, "battery_power_w") + _number(row, "dc_system_power_w") - _number(row, "pv_dc_w")
        volts, amps = _number(inv, "dc_voltage_v"), _number(inv, "dc_current_a")
        agree["dc"] += abs(volts * amps - dc_w) <= volts * (0.05 + amps_tol) + 2  # the current's 0.1 A rounding
    assert all(n >= WINDOW_S - 2 for n in agree.values()), f"seconds (of {WINDOW_S}) that agree: {agree}"
