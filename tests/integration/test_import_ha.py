"""Import the real Home Assistant recording (../shared/data/powerflow_sim) into a real influxd."""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bess_common.influx import InfluxClient
from deploy.localservices import InfluxServer
from tests.conftest import REPO_ROOT, SHARED_DATA, run_cli

pytestmark = pytest.mark.integration

DATA = SHARED_DATA / "powerflow_sim"
if not DATA.is_dir():
    DATA = REPO_ROOT.parent / "shared" / "data" / "powerflow_sim"
FILES = [DATA / "battery_power.csv", DATA / "battery_soc.csv", DATA / "pv_power.csv"]
MAPPING = REPO_ROOT / "deploy" / "import-mappings" / "powerflow-ha.toml"
SITE = "powerflow-es"
FIELD_OF = {
    "sensor.battery_power": "battery_power_w",
    "sensor.battery_state_of_charge": "battery_soc_pct",
    "sensor.pv_power": "pv_w",
}


def write_config(tmp_path: Path, server: InfluxServer) -> Path:
    """A config pointing at this test's influxd, with a temp buffer directory and quick retries."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'site = "unused"\n[influx]\nurl = "{server.url}"\ndatabase = "bess"\n'
        f'[collector]\nbuffer_dir = "{tmp_path / "buffer"}"\nbuffer_sync = "normal"\nretry_max_s = 0.5\n'
        '[logging]\nformat = "json"\n'
    )
    return path


def numeric_rows(path: Path) -> list[tuple[str, float, str]]:
    """(entity, value, last_changed) of every row with a finite numeric state, read with the csv module."""
    out = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                value = float(row["state"])
            except (ValueError, TypeError):  # not a number, or a short (e.g. NUL-only) line
                continue
            if math.isfinite(value):
                out.append((row["entity_id"], value, row["last_changed"]))
    return out


def field_counts(influx: InfluxClient) -> dict[str, int]:
    series = influx.query(f"SELECT count(*) FROM system WHERE site = '{SITE}'")
    row = series[0].rows()[0]
    return {k.removeprefix("count_"): v for k, v in row.items() if k.startswith("count_")}


def import_ha(config: Path, *files: Path) -> str:
    result = run_cli(
        "collector", "import", "--config", str(config), "--format", "ha", "--mapping", str(MAPPING),
        *map(str, files), timeout_s=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_when_powerflow_recording_is_imported_twice_then_counts_values_and_sign_match_the_file(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    config = write_config(tmp_path, influx_server)
    out = import_ha(config, *FILES)

    rows = [r for f in FILES for r in numeric_rows(f)]
    expected = Counter(FIELD_OF[entity] for entity, _, _ in rows)
    assert field_counts(influx) == dict(expected)
    assert "import complete" in out
    assert "state unavailable (missing)" in out  # the 24 `unavailable` rows are reported, not written

    # spot values, straight from the file: the sign of battery power flips (HA + = discharging)
    power_rows = [r for r in rows if r[0] == "sensor.battery_power"]
    for entity, value, changed in power_rows[:: len(power_rows) // 7]:
        got = influx.query(f"SELECT battery_power_w FROM system WHERE site = '{SITE}' AND time = '{changed}'")
        assert got[0].rows()[0]["battery_power_w"] == pytest.approx(-value), (entity, changed)

    # the schema's convention: power > 0 while the SoC rises (hourly, in the high-resolution part)
    window = "time >= '2024-11-24T04:00:00Z' AND time < '2024-12-04T18:00:00Z'"
    power = influx.query(
        f"SELECT mean(battery_power_w) FROM system WHERE site = '{SITE}' AND {window} GROUP BY time(1h)"
    )
    soc = influx.query(
        f"SELECT first(battery_soc_pct), last(battery_soc_pct) FROM system WHERE site = '{SITE}' AND {window} "
        "GROUP BY time(1h)"
    )
    pairs = [
        (p["mean"], s["last"] - s["first"])
        for p, s in zip(power[0].rows(), soc[0].rows(), strict=True)
        if p["mean"] is not None and s["first"] is not None
    ]
    assert len(pairs) > 150
    assert np.corrcoef(np.array(pairs).T)[0, 1] > 0.8

    # idempotent: the same file again overwrites, nothing doubles
    import_ha(config, *FILES)
    assert field_counts(influx) == dict(expected)


def test_when_file_has_bad_rows_then_reported_with_line_numbers_and_the_rest_lands(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    lines = FILES[0].read_text().splitlines(keepends=True)[:2001]
    lines[10] = "sensor.battery_power,12,yesterday\n"  # line 11
    lines[20] = "sensor.battery_power,lots,2024-01-02T00:00:00.000Z\n"  # line 21
    lines[30] = "\x00\x00\x00\n"  # line 31
    sample = tmp_path / "battery_power.csv"
    sample.write_text("".join(lines))
    config = write_config(tmp_path, influx_server)

    out = import_ha(config, sample)

    assert f"bad: bad timestamp: 1 (first at {sample}:11" in out
    assert f"bad: non-numeric state: 1 (first at {sample}:21" in out
    assert f"bad: NUL bytes in line: 1 (first at {sample}:31" in out
    assert field_counts(influx) == {"battery_power_w": len(numeric_rows(sample)) - 1}  # 'yesterday' had a number


def test_when_influx_is_down_then_exit_1_and_a_rerun_finishes(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    config = write_config(tmp_path, influx_server)
    influx_server.stop()
    result = run_cli(
        "collector", "import", "--config", str(config), "--format", "ha", "--mapping", str(MAPPING),
        "--stall-deadline-s", "2", str(FILES[1]), timeout_s=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "INCOMPLETE" in result.stdout
    assert (tmp_path / "buffer" / f"import-{SITE}" / "buffer.db").exists()

    influx_server.start()
    import_ha(config, FILES[1])
    assert field_counts(influx) == {"battery_soc_pct": len(numeric_rows(FILES[1]))}


def test_when_mapping_is_invalid_then_exit_2_with_the_problem(tmp_path: Path, influx_server: InfluxServer) -> None:
    config = write_config(tmp_path, influx_server)
    result = run_cli(
        "collector", "import", "--config", str(config), "--format", "ha",
        "--map", "sensor.battery_power=system.battery_power", str(FILES[0]),
    )  # fmt: skip
    assert result.returncode == 2
    assert "not an importable field" in result.stderr
