"""`bess-collector discover` without an address: the simulated GX announces itself over SSDP on loopback (the
search goes to the announcer's loopback port, never to any other address) and discover finds it, with its
portal id, then reads it over MQTT and Modbus."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from collector.simulator.gx import GxSimulator
from collector.simulator.ssdp import SsdpAnnouncer
from deploy.localservices import MosquittoServer, free_port
from tests.conftest import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def sim(mosquitto: MosquittoServer) -> Iterator[GxSimulator]:
    gx = GxSimulator(seed=3, modbus_port=0, mqtt_port=mosquitto.port, cells=4).start()
    yield gx
    gx.stop()


def test_when_no_host_given_then_discover_finds_the_gx_over_ssdp_with_its_portal_id(
    mosquitto: MosquittoServer, sim: GxSimulator
) -> None:
    with SsdpAnnouncer(sim.portal_id) as announcer:
        done = run_cli(
            "collector", "discover", "--ssdp-address", f"127.0.0.1:{announcer.port}", "--search-s", "2",
            "--mqtt-port", str(mosquitto.port), "--modbus-port", str(sim.modbus_port), timeout_s=60,
        )  # fmt: skip
        assert announcer.searches >= 1
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(rf"found 127\.0\.0\.1\s+portal id {sim.portal_id}\s+Cerbo GX", done.stdout), done.stdout
    assert f"MQTT {mosquitto.port}: portal id {sim.portal_id}" in done.stdout  # it then read the GX it found
    assert 'host = "127.0.0.1"' in done.stdout and f'portal_id = "{sim.portal_id}"' in done.stdout


def test_when_nothing_answers_then_discover_says_so_and_exits_1() -> None:
    silent = free_port()  # a loopback port nobody answers on
    done = run_cli("collector", "discover", "--ssdp-address", f"127.0.0.1:{silent}", "--search-s", "1", timeout_s=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no GX answered the search" in done.stdout
