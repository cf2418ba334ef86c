"""InfluxDB over https with a self-signed certificate made in the test (a real influxd with TLS).

The client writes when `influx.ca_file` trusts the certificate and refuses (sends nothing) when it does not
(`verify_tls = true`, no CA). The collector as a subprocess writes over https with the CA; without it, it
writes nothing, keeps the data in its buffer and says why in its log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bess_common.config import InfluxSettings
from bess_common.errors import RetryableError
from bess_common.influx import InfluxClient
from collector.simulator.gx import GxSimulator
from deploy.localservices import InfluxServer
from tests.integration.pipeline import CollectorProcess, log_events, write_config
from tests.integration.tlscerts import make_cert
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def https_influx(tmp_path: Path) -> Iterator[tuple[InfluxServer, Path]]:
    certs = tmp_path / "certs"
    certs.mkdir()
    cert, key, _fingerprint = make_cert(certs)
    server = InfluxServer(tmp_path / "influxd-https", https_cert=cert, https_key=key)
    server.start()
    try:
        yield server, cert
    finally:
        server.stop()


def _trusted(server: InfluxServer, cert: Path) -> InfluxClient:
    return InfluxClient(InfluxSettings(url=server.url, database="bess", ca_file=cert, timeout_s=3.0))


def _count(client: InfluxClient, query: str) -> int:
    return sum(len(s.values) for s in client.query(query))


def test_when_ca_file_trusts_the_certificate_then_writes_and_queries_over_https(
    https_influx: tuple[InfluxServer, Path],
) -> None:
    server, cert = https_influx
    assert server.url.startswith("https://")
    client = _trusted(server, cert)
    client.create_database()
    client.write(["probe,site=t value=1.5 1700000000000000000"])
    rows = [r for s in client.query("SELECT value FROM probe") for r in s.rows()]
    assert rows == [{"time": 1700000000000000000, "value": 1.5}]
    client.close()


def test_when_certificate_not_trusted_then_client_refuses_and_nothing_is_written(
    https_influx: tuple[InfluxServer, Path],
) -> None:
    server, cert = https_influx
    trusted = _trusted(server, cert)
    trusted.create_database()
    untrusted = InfluxClient(InfluxSettings(url=server.url, database="bess", verify_tls=True, timeout_s=3.0))
    with pytest.raises(RetryableError) as refused:
        untrusted.write(["probe,site=t value=2.5 1700000000000000000"])
    assert "certificate verify failed" in str(refused.value) and "influx.ca_file" in str(refused.value)
    with pytest.raises(RetryableError):
        untrusted.ping()
    assert trusted.query("SHOW MEASUREMENTS") == []  # not one line got through
    trusted.close()
    untrusted.close()


def test_when_collector_uses_https_with_the_ca_then_rows_land_and_without_it_nothing_does(
    https_influx: tuple[InfluxServer, Path], tmp_path: Path
) -> None:
    server, cert = https_influx
    sim = GxSimulator(seed=3, modbus_port=0, mqtt_port=None, cells=4).start()
    trusted = _trusted(server, cert)
    trusted.create_database()
    refused_config = write_config(
        tmp_path / "no-ca.toml",
        server.url,
        modbus_port=sim.modbus_port,
        mqtt_port=None,
        buffer_dir=tmp_path / "buffer-no-ca",
        site="refused",
        shutdown_flush_timeout_s=1.0,
    )
    with_ca = write_config(
        tmp_path / "ca.toml",
        server.url,
        modbus_port=sim.modbus_port,
        mqtt_port=None,
        buffer_dir=tmp_path / "buffer-ca",
        site="trusted",
    )
    with_ca.write_text(with_ca.read_text().replace("timeout_s = 3.0\n", f'timeout_s = 3.0\nca_file = "{cert}"\n'))
    good = CollectorProcess(with_ca, tmp_path / "ca.log").start()
    bad = CollectorProcess(refused_config, tmp_path / "no-ca.log").start()
    try:
        wait_until(
            lambda: _count(trusted, "SELECT voltage_v FROM battery WHERE site = 'trusted'") >= 3,
            30,
            "shunt rows written over https",
        )
        time.sleep(2.0)  # the untrusted one has had as long as the trusted one needed, and more
        assert bad.proc is not None and bad.proc.poll() is None, "an untrusted certificate must not crash it"
    finally:
        assert good.stop() == 0, good.log()[-2000:]
        bad_code = bad.stop()
        sim.stop()
    assert bad_code == 0, bad.log()[-2000:]
    assert _count(trusted, "SELECT * FROM battery WHERE site = 'refused'") == 0
    assert _count(trusted, "SELECT * FROM collector_health WHERE site = 'refused'") == 0
    bad_log = bad.log()
    assert "influx_unreachable_at_start" in log_events(bad_log)
    assert "certificate verify failed" in bad_log.lower(), bad_log[-2000:]
    assert '"left_in_buffer": 0' not in bad_log  # what it collected waits in its buffer for a fixed config
    trusted.close()
