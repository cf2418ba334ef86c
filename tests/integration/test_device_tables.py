"""The inverter/charger, solar chargers and grid meter as first-class tables, end to end: the simulated GX
publishes vebus/276, solarcharger/279 and /280 and grid/30 over a real mosquitto, the collector (a
subprocess) lands `inverter`, `solarcharger` and `meter` rows every second in a real influxd, tagged by
instance, and every value is the simulator's truth for a second it could have been sampled at."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bess_common.influx import InfluxClient
from collector.simulator.gx import GxSimulator
from deploy.localservices import InfluxServer, MosquittoServer
from tests.integration.pipeline import SECOND_NS, CollectorProcess, whole_seconds, write_config
from tests.integration.test_collector_end_to_end import _matches_truth, _rows
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

WINDOW_S = 12
# (measurement, where, simulator role) -> {field: (D-Bus path, tolerance)}
TABLES: dict[tuple[str, str, str], dict[str, tuple[str, float]]] = {
    ("inverter", "device = 'vebus' AND instance = '276'", "vebus"): {
        "ac_in_l1_w": ("/Ac/ActiveIn/L1/P", 0.0),
        "ac_in_l1_v": ("/Ac/ActiveIn/L1/V", 1e-6),
        "ac_out_l1_w": ("/Ac/Out/L1/P", 0.0),
        "dc_power_w": ("/Dc/0/Power", 0.0),
        "dc_current_a": ("/Dc/0/Current", 1e-6),
        "state": ("/State", 0.0),
    },
    ("solarcharger", "instance = '279'", "mppt1"): {
        "pv_w": ("/Yield/Power", 0.0),
        "pv_v": ("/Pv/V", 1e-6),
        "battery_a": ("/Dc/0/Current", 1e-6),
        "state": ("/State", 0.0),
    },
    ("solarcharger", "instance = '280'", "mppt2"): {"pv_w": ("/Yield/Power", 0.0), "state": ("/State", 0.0)},
    ("meter", "device = 'grid' AND instance = '30'", "grid"): {
        "l1_w": ("/Ac/L1/Power", 0.0),
        "power_w": ("/Ac/Power", 0.0),
        "l1_v": ("/Ac/L1/Voltage", 1e-6),
    },
}


@pytest.fixture
def gx(mosquitto: MosquittoServer) -> Iterator[GxSimulator]:
    sim = GxSimulator(seed=21, modbus_port=None, mqtt_port=mosquitto.port, cells=4).start()
    yield sim
    sim.stop()


def test_when_the_gx_has_a_multi_two_mppts_and_a_grid_meter_then_their_rows_land_each_second_matching_truth(
    influx_server: InfluxServer, influx: InfluxClient, mosquitto: MosquittoServer, gx: GxSimulator, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "c.toml", influx_server.url, modbus_port=None, mqtt_port=mosquitto.port,
        buffer_dir=tmp_path / "buffer", portal_id=gx.portal_id,
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
    for (measurement, which, role), fields in TABLES.items():
        rows = _rows(influx, f"SELECT * FROM {measurement} WHERE {which} AND {where}")
        complete = {int(str(r["time"])): r for r in rows if all(r.get(f) is not None for f in fields)}
        assert set(complete) == window, f"{role}: seconds missing {sorted(window - set(complete))[:5]}"
        for t_ns, row in complete.items():
            for name, (path, tol) in fields.items():
                value, age_s = float(str(row[name])), float(str(row["age_s"]))
                assert _matches_truth(gx, role, path, t_ns // SECOND_NS, value=value, age_s=age_s, tol=tol), (
                    role, name, t_ns, value,
                )  # fmt: skip
    # in InfluxDB too, the devices add up to the system totals of the same second
    system = {int(str(r["time"])): r for r in _rows(influx, f"SELECT pv_dc_w, grid_l1_w FROM system WHERE {where}")}
    mppts = _rows(influx, f"SELECT pv_w FROM solarcharger WHERE {where} GROUP BY instance")
    meter = {int(str(r["time"])): r for r in _rows(influx, f"SELECT l1_w FROM meter WHERE {where}")}
    pv_agree = grid_agree = 0  # (a second may pair values sampled a message apart: most seconds, not all)
    for t_ns, row in system.items():
        pv = [float(str(r["pv_w"])) for r in mppts if int(str(r["time"])) == t_ns]
        if len(pv) == 2 and row.get("pv_dc_w") is not None and sum(pv) == float(str(row["pv_dc_w"])):
            pv_agree += 1
        if t_ns in meter and row.get("grid_l1_w") is not None:
            grid_agree += float(str(meter[t_ns]["l1_w"])) == float(str(row["grid_l1_w"]))
    assert pv_agree >= WINDOW_S - 2, f"the MPPTs' sum matched pv_dc_w in only {pv_agree} of {WINDOW_S} seconds"
    assert grid_agree >= WINDOW_S - 2, f"the grid meter matched grid_l1_w in only {grid_agree} of {WINDOW_S} s"
