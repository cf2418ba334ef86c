"""The PV forecast provider in the real collector (a subprocess) against a local replay server and a real influxd:
what lands in `pv_forecast`, retries on 500 / 429 / a hung server while sampling goes on, a malformed answer set
aside, a bad site refused at start-up, and the simulator's own forecast server. Asserted from InfluxDB, /metrics,
the exit code and the files the operator sees."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from bess_common.influx import InfluxClient
from collector.simulator.gx import GxSimulator
from collector.simulator.pvforecast import SimPvForecast
from collector.simulator.pvserver import PvForecastServer
from deploy.localservices import InfluxServer, free_port
from tests.conftest import run_cli
from tests.integration.pipeline import SECOND_NS, CollectorProcess, shunt_seconds, whole_seconds, write_config
from tests.integration.pvreplay import FIXTURES, ReplayServer, Step
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
HANG_TIMEOUT_S = 5.0


@pytest.fixture
def gx() -> Iterator[GxSimulator]:
    sim = GxSimulator(seed=5, modbus_port=0, mqtt_port=None).start()
    yield sim
    sim.stop()


def _collector(tmp_path: Path, influx_url: str, gx: GxSimulator, pv: dict[str, Any], metrics_port: int) -> Path:
    config = write_config(
        tmp_path / "c.toml", influx_url, modbus_port=gx.modbus_port, mqtt_port=None, buffer_dir=tmp_path / "buffer"
    )
    text = config.read_text().replace("metrics_port = 0\n", f"metrics_port = {metrics_port}\n")
    table = "".join(f"{k} = {json.dumps(v)}\n" for k, v in pv.items())
    config.write_text(text + "[collector.pv_forecast]\n" + table)
    return config


def _pv(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True, "url": url, "latitude": 51.3127, "longitude": 9.4797, "tilt_deg": 30, "azimuth_deg": 0,
        "kwp": 4.2, "jitter_s": 0, "timeout_s": HANG_TIMEOUT_S, "retry_initial_s": 0.4, "retry_max_s": 1.0, **extra,
    }  # fmt: skip


def _metrics(port: int) -> dict[str, float]:
    try:
        text = urllib3.PoolManager(retries=False).request("GET", f"http://127.0.0.1:{port}/metrics").data.decode()
    except urllib3.exceptions.HTTPError:  # not serving yet
        return {}
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _metrics_once(port: int, family: str, kind: str) -> dict[str, float] | None:
    """/metrics once the pv_forecast counter `kind` is non-zero, else None."""
    metrics = _metrics(port)
    return metrics if _pv_metric(metrics, family, kind) else None


def _pv_metric(metrics: dict[str, float], family: str, kind: str) -> float:
    return metrics.get(f'bess_collector_{family}_total{{kind="{kind}",source="pv_forecast"}}', 0.0)


def _rate_limited(now_s: float) -> bytes:
    """Forecast.Solar's 429 body (tests/fixtures/forecast_solar_ratelimit.json) retrying 3 s from now."""
    doc = json.loads((FIXTURES / "forecast_solar_ratelimit.json").read_text())
    at = dt.datetime.fromtimestamp(int(now_s) + 4, dt.timezone(dt.timedelta(hours=1)))
    doc["message"]["ratelimit"]["retry-at"] = at.isoformat()
    return json.dumps(doc).encode()


def _utc_ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * SECOND_NS


def test_when_the_service_fails_then_retries_back_off_sampling_goes_on_and_the_issue_lands(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient, gx: GxSimulator
) -> None:
    replay = ReplayServer(
        [Step(500, b'{"result": null, "message": {"code": 500, "type": "error", "text": "oops"}}'),
         Step(429, _rate_limited), Step(hang_s=30.0)]
    ).start()  # fmt: skip
    metrics_port = free_port()
    proc = CollectorProcess(
        _collector(tmp_path, influx_server.url, gx, _pv(replay.url), metrics_port), tmp_path / "collector.log"
    ).start()
    try:
        rows = wait_until(
            lambda: [r for s in influx.query("SELECT * FROM pv_forecast") for r in s.rows()], 40, "the forecast issue"
        )
        metrics = wait_until(lambda: _metrics_once(metrics_port, "source_events", "issues_stored"), 10, "the counters")
    finally:
        proc.stop()
        replay.stop()
    log = proc.log()
    assert [r.answered for r in replay.requests] == ["500", "429", "hang", "200"], log
    assert all(r.path == "/estimate/51.3127/9.4797/30/0/4.2?time=utc" for r in replay.requests)
    gaps = [b.mono_s - a.mono_s for a, b in zip(replay.requests, replay.requests[1:], strict=False)]
    assert 0.15 <= gaps[0] <= 3.0  # backoff after the 500 (0.2 .. 0.4 s: equal jitter), not the 429 wait
    assert gaps[1] >= 2.9  # the 429's retry-at (4 s ahead, whole seconds) was honoured
    assert gaps[2] >= HANG_TIMEOUT_S  # the hung request was given up after its timeout, then retried
    # The collector kept sampling at 1 Hz while the request hung.
    hang_start_ns = int(replay.requests[2].wall_s * 1e9)
    hang_end_ns = int(replay.requests[3].wall_s * 1e9)
    expected = whole_seconds(hang_start_ns, hang_end_ns)
    assert len(shunt_seconds(influx, hang_start_ns, hang_end_ns)) >= len(expected) - 1
    # The issue: stamped with the time it was received, target times in UTC, mean power of each hour.
    assert len(rows) == 34
    issued = {r["time"] for r in rows}
    assert len(issued) == 1
    assert hang_end_ns <= issued.pop() <= hang_end_ns + 5 * SECOND_NS
    by_step = {int(r["step"]): r for r in rows}
    assert by_step[0]["target_ns"] == _utc_ns("2025-11-09T06:00:00+00:00")  # 07:23:41 +01:00 sunrise hour
    assert (by_step[4]["target_ns"], by_step[4]["power_w"]) == (_utc_ns("2025-11-09T10:00:00+00:00"), 1122.0)
    assert by_step[12]["power_w"] == 0.0 and by_step[33]["period_s"] == 3600
    assert {r["provider"] for r in rows} == {"forecast_solar"} and {r["site"] for r in rows} == {"t"}
    # What the operator sees on /metrics.
    assert _pv_metric(metrics, "source_errors", "error_http_500") == 1.0
    assert _pv_metric(metrics, "source_errors", "error_http_429") == 1.0
    assert _pv_metric(metrics, "source_errors", "error_timeout") == 1.0
    assert _pv_metric(metrics, "source_events", "periods_stored") == 34.0
    assert metrics['bess_collector_source_state{device="forecast_service",source="pv_forecast",state="connected"}']


def test_when_the_answer_is_malformed_then_it_is_set_aside_and_counted_and_sampling_goes_on(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient, gx: GxSimulator
) -> None:
    garbage = b'{"result": {"watt_hours_period": {"soon": 12}}, "message": {"code": 0}}'
    replay = ReplayServer([Step(200, garbage)]).start()
    metrics_port = free_port()
    proc = CollectorProcess(
        _collector(tmp_path, influx_server.url, gx, _pv(replay.url), metrics_port), tmp_path / "collector.log"
    ).start()
    try:
        metrics = wait_until(
            lambda: _metrics_once(metrics_port, "source_errors", "error_rejected"), 20, "the rejected answer counted"
        )
        since_ns = time.time_ns()
        wait_until(lambda: len(shunt_seconds(influx, since_ns, since_ns + 20 * SECOND_NS)) >= 3, 15, "sampling")
        assert proc.proc is not None and proc.proc.poll() is None  # nothing crashed
    finally:
        code = proc.stop()
        replay.stop()
    assert code == 0
    assert _pv_metric(metrics, "source_errors", "error_rejected") == 1.0
    assert (tmp_path / "buffer" / "pv_forecast_rejected.json").read_bytes() == garbage
    assert influx.query("SELECT count(power_w) FROM pv_forecast") == []
    assert "pv_forecast_rejected" in proc.log() and "unreadable timestamp 'soon'" in proc.log()
    assert len(replay.requests) == 1  # the next try waits for the next scheduled fetch, not a retry storm


@pytest.mark.parametrize(
    ("pv", "problem"),
    [
        ({"latitude": 95.0}, "collector.pv_forecast.latitude"),
        ({"latitude": None}, "enabled needs latitude"),
        ({"latitude": 0.0, "longitude": 0.0}, "latitude = longitude = 0"),
        ({"azimuth_deg": 270}, "collector.pv_forecast.azimuth_deg"),
        ({"colour": "blue"}, "collector.pv_forecast.colour: unknown key"),
    ],
)
def test_when_the_site_is_wrong_then_the_collector_refuses_to_start_with_exit_2(
    tmp_path: Path, pv: dict[str, Any], problem: str
) -> None:
    settings = {k: v for k, v in {**_pv("http://127.0.0.1:9"), **pv}.items() if v is not None}
    config = tmp_path / "c.toml"
    config.write_text(
        f'[collector]\nbuffer_dir = "{tmp_path / "buffer"}"\n[collector.pv_forecast]\n'
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    )
    result = run_cli("collector", "run", "--config", str(config), timeout_s=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert problem in result.stdout + result.stderr


def test_when_the_provider_asks_the_simulator_then_the_simulators_forecast_lands_as_issued(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient, gx: GxSimulator
) -> None:
    server = PvForecastServer(SimPvForecast(gx.physics), zone="Europe/Berlin").start()
    proc = CollectorProcess(
        _collector(tmp_path, influx_server.url, gx, _pv(f"http://127.0.0.1:{server.port}"), 0),
        tmp_path / "collector.log",
    ).start()
    try:
        rows = wait_until(
            lambda: [r for s in influx.query("SELECT * FROM pv_forecast") for r in s.rows()], 30, "the issue"
        )
    finally:
        proc.stop()
        server.stop()
    [served] = server.served
    expected = {p.target_ns: float(round(p.power_w)) for p in served.periods}  # Forecast.Solar sends whole Wh
    landed = {r["target_ns"]: r["power_w"] for r in rows}
    assert landed == {t: expected[t] for t in landed}
    assert {t for t, w in expected.items() if w > 0} <= set(landed)
    assert min(landed) >= served.periods[0].target_ns  # nothing before the issue hour (a night issue: sunrise)
    issued_ns = {r["time"] for r in rows}.pop()
    assert served.issued_ns <= issued_ns <= served.issued_ns + 5 * SECOND_NS  # stamped on receipt
