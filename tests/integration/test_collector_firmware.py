"""End to end at each dbus_modbustcp release: real influxd, the simulated GX serving that release's
register list (`firmware=`), the collector as a subprocess.

Reading Modbus only: every field the release can give (its register, or the older register registers.csv
names as fallback, is served there) lands in InfluxDB every second of the window; once the gaps are learned
every poll takes the fewest requests that release allows (tests/unit/test_firmware.py) and none is refused;
and the GX never received a write. With MQTT as well (real mosquitto; the default configuration): every
poll takes at most 8 requests, and the DC charger power, which registers.csv marks read=in_block, lands
every second although on the older releases Modbus never reads it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bess_common.influx import InfluxClient
from bess_common.schema import DEVICE_TAG
from collector.config import GxSettings
from collector.gx import tables
from collector.simulator.gx import GxSimulator
from collector.simulator.recording import ModbusRequest
from collector.sources.modbus_plan import plan_roles
from deploy.localservices import InfluxServer, MosquittoServer
from tests.integration.pipeline import SECOND_NS, collector_running, next_window, whole_seconds, write_config
from tests.unit.test_firmware import MAX_REQUESTS_PER_POLL, fewest_for, wanted_release_gives
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
WINDOW_S = 5
RELEASES = ["v1.0.42", "v1.0.77", "v1.0.94", "v1.0.101"]
CHARGER_W = 240.0  # a DC charger on this site (the simulated one has none: the path would be invalid)
CHARGER_REGISTER = 855
# Before v1.0.95 register 855 stands alone between unserved 852-854 and 856-859; from then on it lies inside
# the system block 826-913 (docs/collector.md, "Older firmware").
CHARGER_IN_A_BLOCK = {"v1.0.42": False, "v1.0.77": False, "v1.0.94": False, "v1.0.101": True}


@pytest.fixture(params=RELEASES)
def gx(request: pytest.FixtureRequest) -> Iterator[GxSimulator]:
    sim = GxSimulator(seed=7, modbus_port=0, mqtt_port=None, firmware=request.param).start()
    yield sim
    sim.stop()


@pytest.fixture(params=RELEASES)
def gx_mqtt(request: pytest.FixtureRequest, mosquitto: MosquittoServer) -> Iterator[GxSimulator]:
    sim = GxSimulator(seed=7, modbus_port=0, mqtt_port=mosquitto.port, firmware=request.param)
    sim.faults.pin("system", "/Dc/Charger/Power", CHARGER_W)  # on Modbus and MQTT alike
    sim.start()
    yield sim
    sim.stop()


def expected_fields(sim: GxSimulator, seconds: list[int]) -> dict[tuple[str, str], set[str]]:
    """(measurement, device tag) -> the fields the simulated release can give over Modbus: its register (or
    the fallback) is served, and the value is valid on D-Bus every second (None = invalid / not applicable)."""
    assert sim.firmware is not None
    truths = [sim.truth(t) for t in seconds]
    out: dict[tuple[str, str], set[str]] = {}
    for plan in plan_roles(GxSettings()):
        given = wanted_release_gives(sim.firmware, plan.role)
        for spec in tables.fields():
            valid = all(truth.get((plan.role, spec.path)) is not None for truth in truths)
            if spec.role == plan.role and spec.path in given and valid:
                out.setdefault((spec.measurement, DEVICE_TAG.get(plan.role, "")), set()).add(spec.field)
    return out


def bursts(requests: list[ModbusRequest], gap_s: float = 0.3) -> list[list[ModbusRequest]]:
    """Requests grouped into polls (a poll reads its blocks back to back, once a second)."""
    out: list[list[ModbusRequest]] = []
    for req in requests:
        if out and req.mono_s - out[-1][-1].mono_s < gap_s:
            out[-1].append(req)
        else:
            out.append([req])
    return out


def test_when_the_gx_runs_an_older_release_then_every_field_it_gives_lands_each_second(
    influx_server: InfluxServer, influx: InfluxClient, gx: GxSimulator, tmp_path: Path
) -> None:
    assert gx.firmware is not None
    config = write_config(
        tmp_path / "c.toml", influx_server.url, modbus_port=gx.modbus_port, mqtt_port=None, buffer_dir=tmp_path / "b"
    )
    with collector_running(config):
        since = time.time_ns()
        wait_until(
            lambda: bool(influx.query(f"SELECT * FROM battery WHERE device = 'bms' AND time >= {since} LIMIT 1")),
            60,
            "a first BMS row",
        )
        start, end = next_window(WINDOW_S)
    window = set(whole_seconds(start, end))
    expected = expected_fields(gx, [t // SECOND_NS for t in sorted(window)])
    assert expected[("battery", "shunt")] >= {"power_w", "voltage_v", "soc_pct"}
    for (measurement, device), names in expected.items():
        tag = f" AND device = '{device}'" if device else ""
        series = influx.query(f"SELECT * FROM {measurement} WHERE time >= {start} AND time < {end}{tag}")
        rows = [row for s in series for row in s.rows()]
        for name in sorted(names):
            have = {int(str(r["time"])) for r in rows if r.get(name) is not None}
            assert have == window, (gx.firmware, measurement, device, name, sorted(window - have)[:5])

    modbus = [r for r in gx.received if isinstance(r, ModbusRequest)]
    assert not [r for r in modbus if r.is_write], "a Modbus write reached the GX"
    steady = bursts(modbus)[2:-1]  # after the probe burst and the first poll; the last may be cut short
    counts = sorted({len(p) for p in steady})
    assert steady and counts == [fewest_for(gx.firmware, mqtt=False)], (gx.firmware, counts)
    assert [r for p in steady for r in p if r.exception is not None] == [], gx.firmware
    print(f"{gx.firmware}: requests per poll {counts}; first burst (probe + poll) {len(bursts(modbus)[0])}")


def test_with_mqtt_every_release_polls_at_most_8_requests_and_the_dc_charger_power_lands_each_second(
    influx_server: InfluxServer, influx: InfluxClient, mosquitto: MosquittoServer, gx_mqtt: GxSimulator, tmp_path: Path
) -> None:
    release = gx_mqtt.firmware
    assert release is not None
    config = write_config(
        tmp_path / "c.toml",
        influx_server.url,
        modbus_port=gx_mqtt.modbus_port,
        mqtt_port=mosquitto.port,
        buffer_dir=tmp_path / "b",
    )
    query = "SELECT charger_power_w FROM system WHERE time >= {} AND time < {}"
    with collector_running(config):
        since = time.time_ns()
        wait_until(lambda: bool(influx.query(query.format(since, time.time_ns()))), 60, "a first charger power")
        start, end = next_window(WINDOW_S)
    rows = [row for s in influx.query(query.format(start, end)) for row in s.rows()]
    landed = {int(str(r["time"])): r["charger_power_w"] for r in rows if r.get("charger_power_w") is not None}
    assert landed == dict.fromkeys(whole_seconds(start, end), CHARGER_W), (release, landed)

    assert not [r for r in gx_mqtt.received if r.is_write], "a Modbus or MQTT write reached the GX"
    modbus = [r for r in gx_mqtt.received if isinstance(r, ModbusRequest)]
    steady = bursts(modbus)[2:-1]  # after the probe burst and the first poll; the last may be cut short
    counts = sorted({len(p) for p in steady})
    assert steady and max(counts) <= MAX_REQUESTS_PER_POLL, (release, counts)
    assert counts == [fewest_for(release)], (release, counts)
    assert [r for p in steady for r in p if r.exception is not None] == [], release
    covers = {
        r.address <= CHARGER_REGISTER < r.address + r.count
        for p in steady
        for r in p
        if r.unit == GxSettings().system_unit_id and r.address is not None and r.count is not None
    }
    # on the older releases the value can only have come over MQTT: no poll read its register
    assert (True in covers) == CHARGER_IN_A_BLOCK[release], (release, covers)
    print(f"{release} with MQTT: requests per poll {counts}; charger power on Modbus {True in covers}")
