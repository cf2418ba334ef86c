"""End to end at each dbus_modbustcp release: real influxd, the simulated GX serving that release's
register list (`firmware=`), the collector as a subprocess reading Modbus only.

Asserted: every field the release can give (its register, or the older register registers.csv names as
fallback, is served there) lands in InfluxDB every second of the window; once the gaps are learned every
poll takes the fewest requests that release allows (tests/unit/test_firmware.py) and none is refused; and
the GX never received a write.
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
from collector.sources.modbus import plan_roles
from deploy.localservices import InfluxServer
from tests.integration.pipeline import SECOND_NS, CollectorProcess, whole_seconds, write_config
from tests.unit.test_firmware import fewest_for, wanted_release_gives
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
WINDOW_S = 5
RELEASES = ["v1.0.42", "v1.0.77", "v1.0.94", "v1.0.101"]


@pytest.fixture(params=RELEASES)
def gx(request: pytest.FixtureRequest) -> Iterator[GxSimulator]:
    sim = GxSimulator(seed=7, modbus_port=0, mqtt_port=None, firmware=request.param).start()
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
    collector = CollectorProcess(config, tmp_path / "collector.log").start()
    try:
        since = time.time_ns()
        wait_until(
            lambda: bool(influx.query(f"SELECT * FROM battery WHERE device = 'bms' AND time >= {since} LIMIT 1")),
            60,
            "a first BMS row",
        )
        start = (time.time_ns() // SECOND_NS + 1) * SECOND_NS
        end = start + WINDOW_S * SECOND_NS
        time.sleep((end - time.time_ns()) / 1e9 + 2.5)
    finally:
        code = collector.stop()
    assert code == 0, collector.log()[-3000:]
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
    assert steady and counts == [fewest_for(gx.firmware)], (gx.firmware, counts)
    assert [r for p in steady for r in p if r.exception is not None] == [], gx.firmware
    print(f"{gx.firmware}: requests per poll {counts}; first burst (probe + poll) {len(bursts(modbus)[0])}")
