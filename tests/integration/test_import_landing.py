"""Landing through the real DiskBuffer + Writer: back-pressure bounds the buffer; a dead InfluxDB stalls."""

from __future__ import annotations

from pathlib import Path

import pytest

from bess_common.config import InfluxSettings
from bess_common.influx import InfluxClient
from bess_common.sample import Sample
from collector.buffer import DiskBuffer
from collector.deadletters import DeadLetters
from collector.importers.landing import ImportStalled, Lander, LandingLimits
from collector.importers.records import Parsed
from collector.importers.report import ImportReport
from collector.sink import Writer
from deploy.localservices import free_port

pytestmark = pytest.mark.integration
T0 = 1_700_000_000 * 10**9


def samples(n: int) -> list[tuple[str, Parsed]]:
    return [("f", Sample("system", {"site": "bp"}, {"pv_w": float(i)}, T0 + i * 10**9)) for i in range(n)]


def test_when_a_long_file_lands_then_the_buffer_stays_bounded_and_everything_arrives(
    tmp_path: Path, influx: InfluxClient
) -> None:
    buffer = DiskBuffer(tmp_path / "buf", 64 * 1024 * 1024, "normal")
    writer = Writer(buffer, influx, DeadLetters(tmp_path / "buf"), batch_max_lines=500, retry_max_s=0.5)
    report = ImportReport()
    limits = LandingLimits(chunk_lines=1000, high_water_lines=4000, low_water_lines=1000)
    lander = Lander(buffer, writer, report, limits=limits)
    depths: list[int] = []

    lander.land(samples(30_000), tick=lambda: depths.append(buffer.depth()))
    lander.finish()

    assert max(depths) <= limits.high_water_lines + limits.chunk_lines
    assert buffer.depth() == 0
    count = influx.query("SELECT count(pv_w) FROM system WHERE site = 'bp'")[0].rows()[0]["count"]
    assert count == 30_000 == report.lines_written


def test_when_influx_is_unreachable_then_import_stalls_after_the_deadline_and_keeps_the_data(tmp_path: Path) -> None:
    buffer = DiskBuffer(tmp_path / "buf", 16 * 1024 * 1024, "normal")
    client = InfluxClient(InfluxSettings(url=f"http://127.0.0.1:{free_port()}", timeout_s=0.5))
    writer = Writer(buffer, client, DeadLetters(tmp_path / "buf"), retry_max_s=0.05)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += max(seconds, 0.05)

    lander = Lander(
        buffer, writer, ImportReport(), limits=LandingLimits(stall_deadline_s=3.0), clock=lambda: now[0], sleep=sleep
    )
    lander.land(samples(100))
    with pytest.raises(ImportStalled):
        lander.finish()
    assert buffer.depth() == 100  # nothing lost: a rerun writes it
    assert 3.0 <= now[0] < 4.0
