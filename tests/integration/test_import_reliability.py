"""The importer never sets aside, drops or double-counts data without the user knowing (real influxd)."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from bess_common.influx import InfluxClient
from deploy.localservices import InfluxServer
from forecaster.backtest.hold import hold_all
from forecaster.backtest.inputs import read_held_series
from forecaster.backtest.plan import Plan
from forecaster.backtest.run import read_series
from forecaster.config import ForecastTask
from forecaster.store import ForecastStore
from tests.conftest import run_cli
from tests.integration.test_import_ha import FILES, MAPPING, SITE, field_counts, numeric_rows, write_config

pytestmark = pytest.mark.integration


def run_import(config: Path, *files: Path, fmt: str = "ha", extra: tuple[str, ...] = ()) -> tuple[int, str, str]:
    mapping = ("--mapping", str(MAPPING)) if fmt == "ha" and "--map" not in extra else ()
    result = run_cli(
        "collector", "import", "--config", str(config), "--format", fmt, *mapping, *extra, *map(str, files),
        timeout_s=300,
    )  # fmt: skip
    return result.returncode, result.stdout, result.stderr


def head(path: Path, n: int, tmp_path: Path, *, header: bool = True) -> Path:
    """The first n data rows of a recording, with or without its header line."""
    lines = path.read_text().splitlines(keepends=True)
    out = tmp_path / f"{path.stem}-{n}{'' if header else '-noheader'}.csv"
    out.write_text("".join(lines[: n + 1] if header else lines[1 : n + 1]))
    return out


def test_when_influx_rejects_lines_then_exit_3_and_the_printed_dead_letter_command_finds_them(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    soc = head(FILES[1], 400, tmp_path)  # hourly SoC, 2023-12-31 .. 2024-01-28
    # a string in the shard of 2024-01-01 .. 2024-01-08: InfluxDB refuses that week's floats (type conflict)
    influx.write([f'system,site={SITE} battery_soc_pct="full" 1704189600000000000'])
    rows = numeric_rows(soc)
    in_week = [r for r in rows if "2024-01-01" <= r[2] < "2024-01-08"]
    config = write_config(tmp_path, influx_server)

    code, out, err = run_import(config, soc)

    assert code == 3, out + err
    found = re.search(r"([\d,]+) rejected by InfluxDB", out)
    assert found, out
    rejected = int(found.group(1).replace(",", ""))
    assert rejected == len(in_week) > 0
    landed = sum(  # InfluxQL has no OR of time ranges: before and after the refused week
        influx.query(f"SELECT count(battery_soc_pct) FROM system WHERE site = '{SITE}' AND {where}")[0].rows()[0][
            "count"
        ]
        for where in ("time < '2024-01-01T00:00:00Z'", "time >= '2024-01-08T00:00:00Z'")
    )
    assert landed == len(rows) - rejected  # every row is in InfluxDB or set aside
    printed = re.search(r"dead-letters list .*", err)
    assert printed, err
    command = printed.group(0)
    listed = run_cli("collector", *shlex.split(command))
    assert listed.returncode == 0, listed.stderr
    assert f"{rejected} lines set aside" in listed.stdout
    assert "field type conflict" in listed.stdout
    plain = run_cli("collector", "dead-letters", "list", "--config", str(config))  # the collector's own folder
    assert f"{rejected} lines set aside by an import: add --buffer-dir" in plain.stdout

    # the conflict resolved (the week's shard dropped), replay writes the import's letters itself
    shard = next(r["id"] for r in influx.query("SHOW SHARDS")[0].rows() if r["start_time"] == "2024-01-01T00:00:00Z")
    influx.query(f"DROP SHARD {shard}")
    replay = run_cli("collector", *shlex.split(command.replace(" list ", " replay ")))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert f"{rejected} lines written, 0 rejected again" in replay.stdout
    assert field_counts(influx) == {"battery_soc_pct": len(rows)}


def test_when_per_entity_files_lack_the_header_then_every_series_lands(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    soc_headerless = head(FILES[1], 10_000, tmp_path, header=False)
    pv_headerless = head(FILES[2], 10_000, tmp_path, header=False)
    config = write_config(tmp_path, influx_server)

    code, out, err = run_import(config, FILES[0], soc_headerless, pv_headerless)

    assert code == 0, out + err
    assert field_counts(influx) == {
        "battery_power_w": len(numeric_rows(FILES[0])),
        "battery_soc_pct": len(numeric_rows(head(FILES[1], 10_000, tmp_path))),
        "pv_w": len(numeric_rows(head(FILES[2], 10_000, tmp_path))),
    }


def test_when_a_file_contributes_nothing_then_the_import_fails_and_names_it(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    soc = head(FILES[1], 500, tmp_path)
    other_entity = tmp_path / "grid.csv"  # a whole file of an entity the mapping does not name
    other_entity.write_text("entity_id,state,last_changed\n" + "sensor.grid_power,5,2024-01-01T00:00:00Z\n" * 3)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    config = write_config(tmp_path, influx_server)

    code, out, err = run_import(config, soc, other_entity, empty)

    assert code == 3, out + err
    assert f"error: {other_entity} contributed nothing (4 lines, not one sample" in err
    assert f"error: {empty} contributed nothing (the file is empty)" in err
    assert "import complete: 3 file(s)" in out
    assert field_counts(influx) == {"battery_soc_pct": len(numeric_rows(soc))}  # the good file still landed

    code, out, err = run_import(config, empty)  # nothing at all: exit 2
    assert code == 2, out + err
    assert "nothing could be imported" in err


def test_when_timestamps_repeat_then_the_summary_reports_them_and_counts_what_influx_holds(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    power = head(FILES[0], 300, tmp_path)
    rows = power.read_text().splitlines(keepends=True)
    repeats = [rows[10], rows[20], rows[30]]  # the same state again: harmless
    changed = [f"{entity},12345,{changed_at}" for entity, _, changed_at in (r.split(",") for r in rows[40:42])]
    power.write_text("".join(rows + repeats + changed))  # two states at taken times: the earlier is lost
    config = write_config(tmp_path, influx_server)

    code, out, err = run_import(config, power)

    assert code == 0, out + err
    distinct = len(numeric_rows(head(FILES[0], 300, tmp_path)))
    assert field_counts(influx) == {"battery_power_w": distinct}
    assert f"{distinct + 5:,} samples ({distinct:,} distinct)" in out
    assert "duplicate: 5 samples repeat the series and time of an earlier one, 2 with a different value" in out
    assert "warning: 5 samples repeat" in err


def test_when_an_interrupted_import_is_resumed_then_the_summary_counts_each_point_once(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    soc = head(FILES[1], 2000, tmp_path)
    config = write_config(tmp_path, influx_server)
    influx_server.stop()
    code, out, err = run_import(config, soc, extra=("--stall-deadline-s", "2"))
    assert code == 1, out + err  # everything stays in the import's buffer

    influx_server.start()
    code, out, err = run_import(config, soc)

    assert code == 0, out + err
    points = len(numeric_rows(soc))
    assert field_counts(influx) == {"battery_soc_pct": points}
    assert f"{points:,} points written" in out
    assert f"resumed: {points:,} points left in the buffer by an interrupted run were written first" in out


def test_when_a_daily_kwh_counter_is_imported_with_the_rate_transform_then_the_power_lands(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    # a daily PV energy counter, as Home Assistant records it, integrated from the real PV power recording
    changes = [
        (changed, value)
        for _, value, changed in numeric_rows(FILES[2])
        if "2024-11-25T00:00:00" <= changed < "2024-11-27T00:00:00"
    ]
    times = [datetime.fromisoformat(changed) for changed, _ in changes]
    lines, energy_kwh, kept = ["entity_id,state,last_changed\n"], 0.0, {}
    for i, (changed, _) in enumerate(changes):
        if i and times[i].date() != times[i - 1].date():
            energy_kwh = 0.0  # the counter resets at midnight (its first reading of the day is below the last)
        elif i:
            energy_kwh += changes[i - 1][1] * (times[i] - times[i - 1]).total_seconds() / 3.6e6
            kept[changes[i - 1][0]] = changes[i - 1][1]  # the power that held over that interval
        lines.append(f"sensor.pv_energy_today,{energy_kwh!r},{changed}\n")
    counter = tmp_path / "pv_energy_today.csv"
    counter.write_text("".join(lines))
    mapping = tmp_path / "counter.toml"
    mapping.write_text(
        f'site = "{SITE}"\n[[map]]\nsource = "sensor.pv_energy_today"\ntarget = "system.pv_w"\n'
        'transform = "rate"\ncounter_unit = "kWh"\n'
    )
    config = write_config(tmp_path, influx_server)

    code, out, err = run_import(config, counter, extra=("--mapping", str(mapping)))

    assert code == 0, out + err
    assert "skipped: counter sensor.pv_energy_today went down (reset): no rate over that interval: 1" in out
    rows = influx.query(f"SELECT pv_w FROM system WHERE site = '{SITE}'")[0].rows()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    expected = {(datetime.fromisoformat(t) - epoch) // timedelta(microseconds=1) * 1000: w for t, w in kept.items()}
    assert len(rows) == len(expected) == len(changes) - 2  # no interval before the first reading, one reset
    assert {r["time"]: r["pv_w"] for r in rows} == {t: pytest.approx(w, abs=1e-6) for t, w in expected.items()}
    assert max(expected.values()) > 1000  # the days had real sun


def test_when_a_sensor_was_unavailable_then_hold_last_does_not_carry_the_value_through_the_outage(
    tmp_path: Path, influx_server: InfluxServer, influx: InfluxClient
) -> None:
    # real rows of 2024-12-02 00:00-04:00; the recording's `unavailable` at 01:35:18 made a one-hour outage
    lines = FILES[0].read_text().splitlines(keepends=True)
    rows = [r for r in lines[1:] if "2024-12-02T00:00:00" <= r.split(",")[2] < "2024-12-02T04:00:00"]
    outage = [r for r in rows if "2024-12-02T01:35:19" < r.split(",")[2] < "2024-12-02T02:35:00"]
    assert any(",unavailable,2024-12-02T01:35:18" in r for r in rows) and len(outage) > 100
    kept = [r for r in rows if r not in outage]
    recording = tmp_path / "battery_power.csv"
    recording.write_text(lines[0] + "".join(kept))
    down = datetime.fromisoformat("2024-12-02T01:35:18.895Z")
    back = next(datetime.fromisoformat(r.split(",")[2].strip()) for r in kept if r.split(",")[2] > "2024-12-02T01:36")
    config = write_config(tmp_path, influx_server)
    code, out, err = run_import(config, recording)
    assert code == 0, out + err
    gaps = influx.query(f"SELECT state, duration_s FROM import_gap WHERE site = '{SITE}'")[0].rows()
    assert [(g["state"], g["duration_s"]) for g in gaps] == [("unavailable", (back - down).total_seconds())]

    start_ns = int(datetime(2024, 12, 2, tzinfo=UTC).timestamp()) * 10**9
    task = ForecastTask(name="t", resolution="1m", past_covariates=["battery_soc_pct"])
    plan = Plan(task, start_ns, start_ns, start_ns + 240 * 60 * 10**9, start_ns, 240, 5, ())
    store = ForecastStore(influx, SITE)
    held = read_held_series(store, plan, hold_last_steps=120)["battery_power_w"]
    raw = read_series(store, plan)["battery_power_w"]

    back_minute = (back.hour * 60) + back.minute
    in_outage = slice(96, back_minute)  # the empty minutes from 01:36 until the sensor is back
    assert np.isnan(raw[in_outage]).all()
    assert np.isnan(held[in_outage]).all()  # not carried through the outage
    assert np.isfinite(held[back_minute])
    carried_before = hold_all({"p": raw}, 120)["p"]  # what the hold alone would have done
    assert np.isfinite(carried_before[in_outage]).all()
    assert np.isfinite(held[:96]).sum() > np.isfinite(raw[:96]).sum()  # elsewhere the hold still fills
