"""Generic CSV and VRM exports through the command into a real influxd (flags, time zone, totals)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bess_common.influx import InfluxClient
from deploy.localservices import InfluxServer
from tests.conftest import run_cli
from tests.integration.test_import_ha import write_config

pytestmark = pytest.mark.integration


def test_when_generic_csv_with_local_times_is_imported_then_values_land_in_utc_with_flags_applied(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    csv_path = tmp_path / "inverter.csv"
    csv_path.write_text(
        "when,P_batt_kW,PV,notes\n"
        "01/07/2024 14:00,-1.5,2000,x\n"
        "01/07/2024 14:01,oops,2100,y\n"
        "01/07/2024 14:02,0.25,,z\n"
    )
    config = write_config(tmp_path, influx_server)
    result = run_cli(
        "collector", "import", "--config", str(config), "--format", "generic", "--site", "inv",
        "--time-column", "when", "--time-format", "%d/%m/%Y %H:%M", "--tz", "Europe/Madrid",
        "--map", "P_batt_kW=system.battery_power_w*-1000", "--map", "PV=system.pv_w", str(csv_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"bad: non-numeric value in P_batt_kW: 1 (first at {csv_path}:3" in result.stdout

    rows = influx.query("SELECT battery_power_w, pv_w FROM system WHERE site = 'inv'")[0].rows()
    t0 = int(datetime(2024, 7, 1, 12, 0, tzinfo=UTC).timestamp()) * 10**9  # 14:00 CEST = 12:00 UTC
    assert [(r["time"], r["battery_power_w"], r["pv_w"]) for r in rows] == [
        (t0, 1500.0, 2000.0),
        (t0 + 60 * 10**9, None, 2100.0),
        (t0 + 120 * 10**9, -250.0, None),
    ]


def test_when_vrm_export_is_imported_then_builtin_columns_and_derived_totals_land(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    start_s = int(datetime(2024, 5, 1, tzinfo=UTC).timestamp())
    lines = [
        "timestamp,Gateway,Gateway,Gateway,Gateway\n",
        ",Battery SOC [%],Battery Power [W],Grid L1 [W],Grid L2 [W]\n",
    ]
    lines += [f"{start_s + 900 * j},{50 + j},{-100 * j},{10 * j},{j}\n" for j in range(8)]
    path = tmp_path / "vrm.csv"
    path.write_text("".join(lines))
    config = write_config(tmp_path, influx_server)

    result = run_cli("collector", "import", "--config", str(config), "--format", "vrm", "--site", "vrm", str(path))
    assert result.returncode == 0, result.stdout + result.stderr

    rows = influx.query("SELECT battery_soc_pct, battery_power_w, grid_w FROM system WHERE site = 'vrm'")[0].rows()
    assert len(rows) == 8
    assert [r["battery_soc_pct"] for r in rows] == [50.0 + j for j in range(8)]
    assert [r["battery_power_w"] for r in rows] == [-100.0 * j for j in range(8)]  # Victron's sign = the schema's
    assert [r["grid_w"] for r in rows] == [11.0 * j for j in range(8)]


def test_when_the_mapping_matches_no_column_then_exit_2_and_the_header_problem_is_reported(
    tmp_path: Path, influx_server: InfluxServer
) -> None:
    path = tmp_path / "data.csv"
    path.write_text("time,Power\n2024-01-01T00:00:00Z,5\n")
    config = write_config(tmp_path, influx_server)
    result = run_cli(
        "collector", "import", "--config", str(config), "--format", "generic", "--map", "power=system.pv_w", str(path)
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"bad: no mapped column in header: 1 (first at {path}:1" in result.stdout
    assert "nothing could be imported" in result.stderr
