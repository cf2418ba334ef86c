"""Pylontech BMS console logs (Solar-Control-Program `var/BMS_log/YYYY-MM-DD.csv`), as files or a tarball.

Columns per module k = 1..8: `SoC_k` [%], `Voltage_k`, `Current_k`, `Temperature_k`, and in the 2023 logger
also `B_Status_k` (Charge / Dischg / Idle) and three more status columns. Units follow the header: without
B_Status (2021) mV, mA (UNSIGNED) and m°C; with it (2023) V, A and °C. `Time` is H:M (2021, about two rows
per minute: the n rows of one minute are spread evenly over it, k * 60 / n s) or H:M:S; the date is the
file name; times are read in the zone given (default UTC: the source does not say).

Per row and module: a `battery` Sample (device = <prefix><k>); modules whose cells are all empty are absent
(7 and 8 always are); a module row with voltage below `min_voltage_v` or a non-numeric cell is a BadRow.
The current's sign comes from B_Status where present, else from collector.importers.direction. A pack-level
`system` Sample per row (mean voltage, mean SoC, summed signed current, power = V * I) is written when
every module seen in the file is valid in that row.
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import IO

from bess_common import schema
from bess_common.sample import FieldValue, Sample
from collector.importers.direction import Direction, infer_directions
from collector.importers.mapping import PylontechOptions
from collector.importers.records import BadRow, Parsed, Skipped, bad
from collector.importers.timeparse import datetime_to_ns

MAX_MODULES = 8
STATUS_DIRECTION = {"charge": 1, "dischg": -1, "idle": 0}
_INCOMPLETE = "module incomplete (some of its cells empty)"
_FILE_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})\.csv$")


@dataclass(frozen=True, slots=True)
class _Columns:
    module: int
    soc: int
    voltage: int
    current: int
    temperature: int
    status: int | None


@dataclass(frozen=True, slots=True)
class Reading:
    """One module in one row, in schema units; current unsigned, direction from the BMS when it says."""

    module: int
    soc_pct: float
    voltage_v: float
    current_abs_a: float
    temperature_c: float
    status_direction: Direction


@dataclass(slots=True)
class _Row:
    line_no: int
    seconds: float
    exact: bool  # the time had seconds (H:M:S); H:M rows are spread within their minute
    readings: list[Reading]


def header_columns(header: list[str]) -> tuple[list[_Columns], bool] | None:
    """Module column indices and whether the units are SI (2023 logger, B_Status present); None if unknown."""
    names = {name.strip(): i for i, name in enumerate(header)}
    if "Time" not in names:
        return None
    found = []
    for k in range(1, MAX_MODULES + 1):
        keys = [f"SoC_{k}", f"Voltage_{k}", f"Current_{k}", f"Temperature_{k}"]
        if all(key in names for key in keys):
            soc, volt, curr, temp = (names[key] for key in keys)
            found.append(_Columns(k, soc, volt, curr, temp, names.get(f"B_Status_{k}")))
    si_units = any(c.status is not None for c in found)
    return (found, si_units) if found else None


def parse_time_of_day(text: str) -> tuple[int, bool]:
    """'7:5' -> (25500, False); '07:05:09' -> (25509, True). ValueError if malformed."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(f"bad time {text!r}")
    hours, minutes = int(parts[0]), int(parts[1])
    seconds = int(parts[2]) if len(parts) == 3 else 0
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"bad time {text!r}")
    return hours * 3600 + minutes * 60 + seconds, len(parts) == 3


def read_module(cells: list[str], col: _Columns, si_units: bool, min_voltage_v: float) -> Reading | str | None:
    """One module's cells -> Reading; None when the module is absent (all empty); a reason when bad."""
    if col.temperature >= len(cells) or col.soc >= len(cells):
        return None if all(not c.strip() for c in cells[col.soc : col.temperature + 1]) else _INCOMPLETE
    texts = (cells[col.soc], cells[col.voltage], cells[col.current], cells[col.temperature])
    if not all(texts):
        return None if not any(t.strip() for t in texts) else _INCOMPLETE
    try:
        soc, volt, curr, temp = float(texts[0]), float(texts[1]), float(texts[2]), float(texts[3])
    except ValueError:
        return "module value not a number"
    if not si_units:
        volt, curr, temp = volt / 1000, curr / 1000, temp / 1000
    if volt < min_voltage_v:
        return f"module voltage below {min_voltage_v:g} V"
    status = cells[col.status].strip().lower() if col.status is not None and col.status < len(cells) else ""
    return Reading(col.module, soc, volt, abs(curr), temp, STATUS_DIRECTION.get(status))


def _read_rows(lines: Iterable[str], options: PylontechOptions, file: str) -> Iterator[_Row | Parsed]:
    layout: tuple[list[_Columns], bool] | None = None
    for line_no, line in enumerate(lines, 1):
        if "\x00" in line:
            yield bad(line_no, "NUL bytes in line", line, file)
            continue
        if not line.strip():
            continue
        cells = line.rstrip("\r\n").split(",")
        if layout is None:
            layout = header_columns(cells)
            if layout is None:
                yield bad(line_no, "not a Pylontech BMS log header", line, file)
                return
            continue
        try:
            seconds, exact = parse_time_of_day(cells[0])
        except ValueError:
            yield bad(line_no, "bad time", line, file)
            continue
        readings = []
        for col in layout[0]:
            got = read_module(cells, col, layout[1], options.min_voltage_v)
            if isinstance(got, str):
                yield bad(line_no, got, line, file)
            elif got is not None:
                readings.append(got)
        if readings:
            yield _Row(line_no, float(seconds), exact, readings)
        else:
            yield Skipped(line_no, "no module data in row", file)


def spread_within_minutes(rows: list[_Row]) -> None:
    """H:M rows stamped with the same minute get k * 60 / n s offsets, k = 0..n-1, in file order."""
    i = 0
    while i < len(rows):
        j = i
        while j < len(rows) and rows[j].seconds == rows[i].seconds and rows[j].exact == rows[i].exact:
            j += 1
        if not rows[i].exact and j - i > 1:
            for k in range(j - i):
                rows[i + k].seconds += k * 60.0 / (j - i)
        i = j


def parse_file_date(name: str) -> date | None:
    """The date of a log from its file name `.../YYYY-MM-DD.csv`."""
    match = _FILE_DATE.search(name)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def parse_pylontech(
    lines: Iterable[str],
    name: str,
    options: PylontechOptions,
    site: str,
    *,
    tz: tzinfo = UTC,
    trust_status: bool = True,
) -> Iterator[Parsed]:
    """One daily log -> battery Samples per module, pack `system` Samples, Skipped and BadRows."""
    day = parse_file_date(name)
    if day is None:
        yield BadRow(0, "file name is not YYYY-MM-DD.csv", "", name)
        return
    rows: list[_Row] = []
    for item in _read_rows(lines, options, name):
        if isinstance(item, _Row):
            rows.append(item)
        else:
            yield item
    if not rows:
        return
    rows.sort(key=lambda r: r.seconds)  # stable: keeps file order within a minute
    spread_within_minutes(rows)
    yield from _samples(rows, day, options, site, tz=tz, trust_status=trust_status, name=name)


def _pack_directions(rows: list[_Row], options: PylontechOptions) -> list[Direction]:
    times = [r.seconds for r in rows]
    soc = [sum(m.soc_pct for m in r.readings) / len(r.readings) for r in rows]
    volt = [sum(m.voltage_v for m in r.readings) / len(r.readings) for r in rows]
    curr = [sum(m.current_abs_a for m in r.readings) for r in rows]
    return infer_directions(
        times,
        soc,
        volt,
        curr,
        window_s=options.direction_window_s,
        soc_min_pct=options.soc_slope_min_pct,
        voltage_min_v=options.voltage_slope_min_v,
    )


def _samples(
    rows: list[_Row], day: date, options: PylontechOptions, site: str, *, tz: tzinfo, trust_status: bool, name: str
) -> Iterator[Parsed]:
    inferred = _pack_directions(rows, options)
    n_modules = max(len(r.readings) for r in rows)
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    for row, pack_direction in zip(rows, inferred, strict=True):
        ts_ns = datetime_to_ns(midnight + timedelta(seconds=row.seconds))
        signed: list[float | None] = []
        for m in row.readings:
            current = _signed_current(m, pack_direction, trust_status)
            signed.append(current)
            fields: dict[str, FieldValue] = {
                "voltage_v": m.voltage_v,
                "soc_pct": m.soc_pct,
                "temperature_c": m.temperature_c,
            }
            if current is None:
                yield Skipped(row.line_no, "current direction unknown (current/power not written)", name)
            else:
                fields.update(current_a=current, power_w=current * m.voltage_v)
            tags = {"site": site, "device": f"{options.device_prefix}{m.module}"}
            yield Sample(schema.BATTERY, tags, fields, ts_ns)
        if options.pack:
            yield from _pack_sample(row, signed, n_modules, site, ts_ns=ts_ns, name=name)


def _signed_current(m: Reading, pack_direction: Direction, trust_status: bool) -> float | None:
    """The module's signed current: 0 when zero; the BMS status when it gives a direction; else the pack's."""
    if not m.current_abs_a:
        return 0.0
    status = m.status_direction if trust_status else None
    direction = status if status else pack_direction  # "Idle" with a current falls back to the inference
    return None if not direction else direction * m.current_abs_a


def _pack_sample(
    row: _Row, signed: list[float | None], n_modules: int, site: str, *, ts_ns: int, name: str
) -> Iterator[Parsed]:
    if len(row.readings) < n_modules:
        yield Skipped(row.line_no, "pack row incomplete (a module missing or bad)", name)
        return
    voltage = sum(m.voltage_v for m in row.readings) / len(row.readings)
    fields: dict[str, FieldValue] = {
        "battery_voltage_v": voltage,
        "battery_soc_pct": sum(m.soc_pct for m in row.readings) / len(row.readings),
    }
    if all(c is not None for c in signed):
        current = sum(c for c in signed if c is not None)
        fields.update(battery_current_a=current, battery_power_w=current * voltage)
    yield Sample(schema.SYSTEM, {"site": site}, fields, ts_ns)


def iter_tar_logs(fileobj: IO[bytes]) -> Iterator[tuple[str, list[str]]]:
    """(member name, lines) of every YYYY-MM-DD.csv in a (compressed) tarball, in archive order.

    Streams the archive once (stdlib tarfile, mode `r|*`): no listing pass and no backward seeks, so the
    position in the file is a true progress measure and a .tar.gz is decompressed exactly once.
    """
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
        for member in tar:
            if not member.isfile() or parse_file_date(member.name) is None:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            with handle:  # read whole (one day, < 1 MB): a streamed member is not seekable for TextIOWrapper
                text = handle.read().decode("utf-8", errors="replace")
            yield member.name, io.StringIO(text, newline="").readlines()
