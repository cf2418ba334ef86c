"""Pylontech BMS logs: units, NUL bytes, low voltages, minute spreading, current direction."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime

import pytest

from bess_common.sample import Sample
from collector.importers.direction import infer_directions
from collector.importers.mapping import PylontechOptions
from collector.importers.pylontech import iter_tar_logs, parse_pylontech, parse_time_of_day
from collector.importers.records import BadRow, Skipped

HEADER_2021 = "Time," + ",".join(f"SoC_{k},Voltage_{k},Current_{k},Temperature_{k}" for k in range(1, 9)) + "\n"
HEADER_2023 = (
    "Time,"
    + ",".join(
        f"SoC_{k},Voltage_{k},Current_{k},Temperature_{k},B_Status_{k},V_Status_{k},C_Status_{k},T_Status_{k}"
        for k in range(1, 9)
    )
    + "\n"
)
DAY_NS = int(datetime(2021, 6, 11, tzinfo=UTC).timestamp()) * 10**9


def row_2021(time: str, modules: list[tuple[float, float, float, float]]) -> str:
    cells = [time] + [f"{s},{v},{i},{t}" for s, v, i, t in modules]
    return ",".join(cells) + "," + ",,,," * (8 - len(modules)) + "\n"


def _parse(text: str, name: str = "2021-06-11.csv", **kw: object) -> list[Sample | BadRow | Skipped]:
    return list(parse_pylontech(text.splitlines(keepends=True), name, PylontechOptions(), "p", **kw))  # type: ignore[arg-type]


def _samples(items: list[Sample | BadRow | Skipped], measurement: str) -> list[Sample]:
    return [i for i in items if isinstance(i, Sample) and i.measurement == measurement]


@pytest.mark.parametrize(
    ("text", "expected"), [("0:0", (0, False)), ("7:5", (25500, False)), ("07:05:09", (25509, True))]
)
def test_when_time_is_h_m_or_h_m_s_then_seconds_of_day(text: str, expected: tuple[int, bool]) -> None:
    assert parse_time_of_day(text) == expected


@pytest.mark.parametrize("text", ["24:00", "7", "7:60", "a:b", ""])
def test_when_time_is_malformed_then_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time_of_day(text)


def test_when_2021_units_then_mv_ma_mdegc_are_converted_and_two_rows_in_a_minute_are_spread() -> None:
    items = _parse(
        HEADER_2021
        + row_2021("10:3", [(36.0, 49160.0, 0.0, 22000.0), (37.0, 49153.0, 0.0, 21000.0)])
        + row_2021("10:3", [(36.0, 49165.0, 0.0, 22000.0), (37.0, 49145.0, 0.0, 21000.0)])
    )
    battery = _samples(items, "battery")
    t0 = DAY_NS + (10 * 3600 + 3 * 60) * 10**9
    assert [(s.tags["device"], s.ts_ns) for s in battery] == [
        ("module1", t0),
        ("module2", t0),
        ("module1", t0 + 30 * 10**9),
        ("module2", t0 + 30 * 10**9),
    ]
    assert battery[0].fields == {
        "voltage_v": pytest.approx(49.16),
        "soc_pct": 36.0,
        "temperature_c": 22.0,
        "current_a": 0.0,
        "power_w": 0.0,
    }
    system = _samples(items, "system")
    assert system[0].fields["battery_voltage_v"] == pytest.approx((49.16 + 49.153) / 2)
    assert system[0].fields["battery_soc_pct"] == 36.5
    assert system[0].fields["battery_current_a"] == 0.0


def test_when_line_has_nul_bytes_or_low_voltage_then_bad_rows_with_line_numbers() -> None:
    items = _parse(
        HEADER_2021
        + row_2021("10:3", [(36.0, 49160.0, 0.0, 22000.0), (37.0, 49153.0, 0.0, 21000.0)])
        + "\x00" * 40
        + "\n"
        + row_2021("10:4", [(36.0, 0.0, 0.0, 22000.0), (37.0, 49153.0, 0.0, 21000.0)])
        + row_2021("10:5", [(36.0, 49160.0, 0.0, 22000.0), (37.0, "x", 0.0, 21000.0)])  # type: ignore[list-item]
    )
    bad = [(i.line_no, i.reason, i.file) for i in items if isinstance(i, BadRow)]
    assert bad == [
        (3, "NUL bytes in line", "2021-06-11.csv"),
        (4, "module voltage below 40 V", "2021-06-11.csv"),
        (5, "module value not a number", "2021-06-11.csv"),
    ]
    # the good module of lines 4 and 5 still lands; the pack rows of those lines do not (incomplete)
    assert len(_samples(items, "battery")) == 4
    assert len(_samples(items, "system")) == 1
    assert [i.line_no for i in items if isinstance(i, Skipped) and i.reason.startswith("pack row")] == [4, 5]


def test_when_file_name_is_not_a_date_then_one_bad_row() -> None:
    items = _parse(HEADER_2021, name="BMS_log.csv")
    assert items == [BadRow(0, "file name is not YYYY-MM-DD.csv", "", "BMS_log.csv")]


def _ramp(soc: tuple[float, float], volt: tuple[float, float], n: int, current_ma: float) -> str:
    """n one-minute rows of six equal modules; soc / volt = (start, step per row)."""
    out = []
    for j in range(n):
        minute = j  # one row per minute
        module = (round(soc[0] + soc[1] * j), volt[0] + volt[1] * j, current_ma, 20000.0)
        out.append(row_2021(f"{minute // 60}:{minute % 60}", [module] * 6))
    return "".join(out)


def test_when_soc_rises_then_unsigned_current_becomes_positive_charging() -> None:
    items = _parse(HEADER_2021 + _ramp((50, 0.1), (50000, 1), 60, 3000.0))
    battery = _samples(items, "battery")
    assert {s.fields["current_a"] for s in battery} == {3.0}
    assert all(float(s.fields["power_w"]) > 0 for s in battery)
    system = _samples(items, "system")
    assert {s.fields["battery_current_a"] for s in system} == {18.0}


def test_when_soc_falls_then_unsigned_current_becomes_negative_discharging() -> None:
    items = _parse(HEADER_2021 + _ramp((80, -0.1), (50000, -1), 60, 3000.0))
    assert {s.fields["current_a"] for s in _samples(items, "battery")} == {-3.0}
    assert all(float(s.fields["battery_power_w"]) < 0 for s in _samples(items, "system"))


def test_when_direction_cannot_be_told_then_current_and_power_are_left_out() -> None:
    items = _parse(HEADER_2021 + _ramp((50, 0.0), (50000, 0), 5, 300.0))
    battery = _samples(items, "battery")
    assert battery and all("current_a" not in s.fields and "voltage_v" in s.fields for s in battery)
    assert all("battery_current_a" not in s.fields for s in _samples(items, "system"))
    assert any(isinstance(i, Skipped) and i.reason.startswith("current direction unknown") for i in items)


def test_when_2023_log_has_b_status_then_it_signs_the_current_and_units_are_si() -> None:
    cells = ["00:00:25"]
    for status, current in (("Dischg", 1.812), ("Charge", 0.5), ("Idle", 0.0)):
        cells += ["74.0", "49.676", str(current), "28.0", status, "Normal", "Normal", "Normal"]
    line = ",".join(cells) + "," + ",,,,,,,," * 5 + "\n"
    items = _parse(HEADER_2023 + line, name="2023-08-21.csv")
    battery = _samples(items, "battery")
    assert [s.fields["current_a"] for s in battery] == [-1.812, 0.5, 0.0]
    assert battery[0].fields["voltage_v"] == 49.676 and battery[0].fields["temperature_c"] == 28.0
    assert battery[0].ts_ns == int(datetime(2023, 8, 21, 0, 0, 25, tzinfo=UTC).timestamp()) * 10**9


@pytest.mark.parametrize(
    ("soc", "volt", "expected"),
    [
        ([50, 50, 51, 51, 52, 52], [50.0] * 6, [1] * 6),
        ([52, 52, 51, 51, 50, 50], [50.0] * 6, [-1] * 6),
        ([50] * 6, [50.0, 50.02, 50.04, 50.06, 50.08, 50.1], [1] * 6),
        ([50] * 6, [50.1, 50.08, 50.06, 50.04, 50.02, 50.0], [-1] * 6),
        ([50] * 6, [50.0] * 6, [None] * 6),
    ],
)
def test_when_slopes_are_clear_then_direction_follows_them(
    soc: list[float], volt: list[float], expected: list[int | None]
) -> None:
    times = [60.0 * j for j in range(6)]
    assert infer_directions(times, soc, volt, [5.0] * 6, window_s=180) == expected


def test_when_current_is_zero_then_direction_is_zero_whatever_the_slope() -> None:
    assert infer_directions([0.0, 60.0, 120.0], [50, 51, 52], [50.0, 50.1, 50.2], [0.0, 2.0, 0.0]) == [0, 1, 0]


def test_when_slopes_go_flat_then_last_direction_holds_for_one_window_only() -> None:
    times = [0.0, 60.0, 120.0, 180.0, 1200.0]
    soc = [50.0, 51.0, 51.0, 51.0, 51.0]
    directions = infer_directions(times, soc, [50.0] * 5, [1.0] * 5, window_s=60, soc_min_pct=0.5)
    assert directions[:2] == [1, 1]
    assert directions[2] == 1  # held (decided 60 s earlier)
    assert directions[4] is None  # too long after the last decision


def test_when_tarball_holds_logs_then_daily_members_come_in_archive_order_and_others_are_ignored() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in (
            ("var/BMS_log/2021-06-12.csv", HEADER_2021),
            ("var/BMS_log/Logfile.txt", "x"),
            ("var/BMS_log/2021-06-11.csv", HEADER_2021 + row_2021("0:0", [(1, 49000, 0, 20000)])),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    members = list(iter_tar_logs(buf))
    assert [m for m, _ in members] == ["var/BMS_log/2021-06-12.csv", "var/BMS_log/2021-06-11.csv"]
    assert members[1][1][1].startswith("0:0,1,49000")


def test_when_bms_says_idle_but_reports_a_current_then_the_status_is_not_trusted_for_the_sign() -> None:
    cells = ["00:00:25"]
    for status, current in (("Idle", 0.05), ("Idle", 0.0)):
        cells += ["74.0", "49.676", str(current), "28.0", status, "Normal", "Normal", "Normal"]
    line = ",".join(cells) + "," + ",,,,,,,," * 6 + "\n"
    battery = _samples(_parse(HEADER_2023 + line, name="2023-08-21.csv"), "battery")
    assert "current_a" not in battery[0].fields  # one row: no slope to infer from, so no invented 0 or sign
    assert battery[1].fields["current_a"] == 0.0
