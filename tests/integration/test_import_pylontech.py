"""Import the real Pylontech BMS recording (../shared/data/pylontech_scp) straight from its tarball."""

from __future__ import annotations

import io
import tarfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bess_common.influx import InfluxClient
from bess_common.sample import Sample
from collector.importers.mapping import PylontechOptions
from collector.importers.pylontech import iter_tar_logs, parse_pylontech
from collector.importers.records import BadRow
from deploy.localservices import InfluxServer
from tests.conftest import REPO_ROOT, SHARED_DATA, run_cli
from tests.integration.test_import_ha import write_config

pytestmark = pytest.mark.integration

DATA = SHARED_DATA / "pylontech_scp"
if not DATA.is_dir():
    DATA = REPO_ROOT.parent / "shared" / "data" / "pylontech_scp"
TARBALL = DATA / "BMS_log_raw_csv.tar.gz"
MAPPING = REPO_ROOT / "deploy" / "import-mappings" / "pylontech-scp.toml"
SITE = "pylontech-scp"
PICK = ("2021-06-11.csv", "2021-07-06.csv", "2023-08-19.csv", "2023-08-21.csv")  # NUL line; H:M; partial; H:M:S


def members(names: tuple[str, ...]) -> dict[str, bytes]:
    """The raw bytes of the chosen daily files of the shared tarball."""
    out = {}
    with tarfile.open(TARBALL, "r:gz") as tar:
        for member in tar.getmembers():
            if Path(member.name).name in names:
                handle = tar.extractfile(member)
                assert handle is not None
                out[Path(member.name).name] = handle.read()
    assert sorted(out) == sorted(names)
    return out


def small_tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"var/BMS_log/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def raw_readings(name: str, data: bytes) -> list[dict[str, Any]]:
    """Every valid module reading of a raw file, read naively: dicts with module, time text, V, |I|, status."""
    lines = data.decode().splitlines()
    header = lines[0].split(",")
    si_units = any(h.startswith("B_Status") for h in header)
    scale = 1.0 if si_units else 0.001
    out = []
    for line_no, line in enumerate(lines[1:], 2):
        if "\x00" in line:
            continue
        cells = dict(zip(header, line.split(","), strict=False))
        for k in range(1, 9):
            values = [cells.get(f"{q}_{k}", "") for q in ("SoC", "Voltage", "Current", "Temperature")]
            if not all(values):
                continue
            volt = float(values[1]) * scale
            if volt < 40:
                continue
            out.append(
                {
                    "file": name,
                    "line": line_no,
                    "module": k,
                    "time": cells["Time"],
                    "voltage_v": volt,
                    "current_abs_a": float(values[2]) * scale,
                    "status": cells.get(f"B_Status_{k}", ""),
                }
            )
    return out


def ts(name: str, time_text: str) -> str:
    day = name.removesuffix(".csv")
    parts = [int(p) for p in time_text.split(":")] + [0]
    return datetime.fromisoformat(day).replace(hour=parts[0], minute=parts[1], second=parts[2], tzinfo=UTC).isoformat()


def battery_counts(influx: InfluxClient) -> dict[str, int]:
    series = influx.query(f"SELECT count(voltage_v) FROM battery WHERE site = '{SITE}' GROUP BY device")
    return {s.tags["device"]: s.rows()[0]["count"] for s in series}


def test_when_daily_logs_are_imported_from_a_tarball_twice_then_counts_values_and_signs_match(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    files = members(PICK)
    tarball = small_tarball(tmp_path / "few_days.tar.gz", files)
    config = write_config(tmp_path, influx_server)
    args = ("collector", "import", "--config", str(config), "--format", "pylontech-bms", "--mapping", str(MAPPING))

    result = run_cli(*args, str(tarball), timeout_s=300)
    assert result.returncode == 0, result.stdout + result.stderr

    readings = [r for name, data in files.items() for r in raw_readings(name, data)]
    expected = Counter(f"module{r['module']}" for r in readings)
    assert battery_counts(influx) == dict(expected)
    assert "bad: NUL bytes in line: 1 (first at var/BMS_log/2021-06-11.csv:1135" in result.stdout

    # spot values at exact timestamps: 2023 rows carry seconds; the first row of a 2021 minute sits on it
    exact = [r for r in readings if str(r["time"]).count(":") == 2][::997]
    first_of_minute = [r for r in readings if r["file"] == "2021-07-06.csv" and r["line"] == 2]
    for r in exact + first_of_minute:
        got = influx.query(
            f"SELECT voltage_v, current_a FROM battery WHERE site = '{SITE}' AND device = 'module{r['module']}' "
            f"AND time = '{ts(str(r['file']), str(r['time']))}'"
        )
        row = got[0].rows()[0]
        assert row["voltage_v"] == pytest.approx(r["voltage_v"]), r
        if r["status"] in ("Charge", "Dischg") and r["current_abs_a"]:
            assert row["current_a"] == pytest.approx(r["current_abs_a"] * (1 if r["status"] == "Charge" else -1)), r

    # signs on 2023-08-21 follow the BMS's own status: discharging rows are negative
    dischg = sum(
        1 for r in readings if r["file"] == "2023-08-21.csv" and r["status"] == "Dischg" and r["current_abs_a"]
    )
    day = "time >= '2023-08-21T00:00:00Z' AND time < '2023-08-22T00:00:00Z'"
    negative = influx.query(f"SELECT count(current_a) FROM battery WHERE site = '{SITE}' AND {day} AND current_a < 0")
    assert negative[0].rows()[0]["count"] == dischg

    # pack rows: one per row with every module valid, and the power is V * I of the pack
    pack = influx.query(f"SELECT * FROM system WHERE site = '{SITE}' AND {day} LIMIT 50")[0].rows()
    assert all(p["battery_power_w"] == pytest.approx(p["battery_voltage_v"] * p["battery_current_a"]) for p in pack)

    result = run_cli(*args, str(tarball), timeout_s=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert battery_counts(influx) == dict(expected)


def test_when_2023_status_is_hidden_then_the_inferred_direction_mostly_agrees_with_the_bms() -> None:
    """The 2021 logs have no sign; check the inference rule on the 2023 logs, whose BMS says the direction."""
    files = members(("2023-08-20.csv", "2023-08-21.csv", "2023-08-22.csv"))
    agree = disagree = 0
    agree_a = total_a = 0.0
    for name, data in files.items():
        lines = data.decode().splitlines(keepends=True)
        truth = [i for i in parse_pylontech(lines, name, PylontechOptions(), "t") if isinstance(i, Sample)]
        guess = [
            i
            for i in parse_pylontech(lines, name, PylontechOptions(), "t", trust_status=False)
            if isinstance(i, Sample)
        ]
        for real, inferred in zip(truth, guess, strict=True):
            current = real.fields.get("current_a")
            if real.measurement != "battery" or not current:
                continue
            same = inferred.fields.get("current_a") == current
            agree, disagree = agree + same, disagree + (not same)
            total_a += abs(float(current))
            agree_a += abs(float(current)) if same else 0.0
    share, share_a = agree / (agree + disagree), agree_a / total_a
    print(f"direction inference vs BMS status: {share:.3f} of module rows, {share_a:.3f} of the current")
    assert agree + disagree > 10_000
    assert share > 0.9
    assert share_a > 0.98


def test_when_the_whole_tarball_is_parsed_then_every_daily_file_yields_data() -> None:
    started = time.monotonic()
    per_file: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    with TARBALL.open("rb") as handle:
        for name, lines in iter_tar_logs(handle):
            per_file[name] += 0
            for item in parse_pylontech(lines, name, PylontechOptions(), SITE):
                if isinstance(item, Sample):
                    per_file[name] += 1
                elif isinstance(item, BadRow):
                    bad[item.reason] += 1
    elapsed_s = time.monotonic() - started
    with tarfile.open(TARBALL, "r:gz") as tar:
        logs = [m for m in tar.getmembers() if m.name.endswith(".csv")]
        nul_lines = sum(
            line.count(b"\x00") > 0 for m in logs for line in (tar.extractfile(m) or io.BytesIO()).read().splitlines()
        )
    samples = sum(per_file.values())
    print(f"whole tarball: {len(per_file)} files, {samples:,} samples in {elapsed_s:.1f} s, bad {dict(bad)}")
    assert len(per_file) == len(logs)
    assert all(count > 0 for count in per_file.values())
    assert bad["NUL bytes in line"] == nul_lines
