"""Smoke tests of the benchmarks' pure parts (no timing assertions: targets live in the benchmarks)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bench.collector_core import Step, ceiling, completeness, match_second, metric, parse_metrics, series_label
from bench.collector_env import GRID_MEASUREMENTS, CollectorConfig, config_text
from bench.common import Row, append_section, markdown_table, percentile, section
from bench.forecaster_core import estimate_finetune, synthetic_series, system_lines
from collector.config import load_settings
from collector.gx import tables
from collector.simulator.devices import DEVICES


def test_when_every_second_is_present_then_completeness_is_one() -> None:
    comp = completeness([("battery[device=shunt]", {"time": 0, "count_voltage_v": 60, "count_soc_pct": 60})], 60)
    assert comp.overall == 1.0
    assert comp.complete_fields == comp.fields == 2
    assert comp.worst() == []


def test_when_a_field_misses_seconds_then_it_is_reported_worst_first() -> None:
    comp = completeness(
        [("cell[cell=1]", {"count_voltage_v": 57}), ("system", {"count_load_w": 60, "count_pv_w": 30})], 60
    )
    assert comp.worst() == [("system.pv_w", 0.5), ("cell[cell=1].voltage_v", 0.95)]
    assert comp.minimum == 0.5
    assert comp.overall == pytest.approx((0.95 + 1.0 + 0.5) / 3)


def test_series_label_leaves_out_the_site_tag() -> None:
    assert series_label("cell", {"site": "x", "cell": "3"}) == "cell[cell=3]"
    assert series_label("system", {"site": "x"}) == "system"


def test_when_metrics_have_labels_then_they_are_summed_and_total_suffix_is_optional() -> None:
    text = (
        "# HELP bess_collector_lines_written_total Lines\n"
        "bess_collector_lines_written_total 1234.0\n"
        'bess_collector_samples_polled_total{source="mqtt"} 10.0\n'
        'bess_collector_samples_polled_total{source="modbus"} 5.0\n'
    )
    parsed = parse_metrics(text)
    assert metric(parsed, "bess_collector_lines_written") == 1234.0
    assert metric(parsed, "bess_collector_samples_polled") == 15.0
    assert math.isnan(metric(parsed, "missing"))


def test_when_one_second_matches_then_it_is_the_change_second() -> None:
    table = {100: {"p": 1.0}, 101: {"p": 2.0}, 102: {"p": 3.0}, 103: {"p": 4.0}}
    assert match_second({"p": 2.0}, lambda s: table.get(s, {"p": -1.0}), ts_s=102) == 101


def test_when_the_value_repeats_then_the_match_is_ambiguous() -> None:
    table = {100: {"p": 2.0}, 101: {"p": 2.0}}
    assert match_second({"p": 2.0}, lambda s: table.get(s, {"p": -1.0}), ts_s=102) is None


def _step(cells: int, missed: int = 0, depth_end: int = 10) -> Step:
    return Step(cells, 100.0, 1000.0, 0.1, 0.2, missed, 10, depth_end, 20.0, 1.0, cells)


def test_ceiling_is_the_last_step_before_the_first_that_fell_behind() -> None:
    steps = [_step(16), _step(64), _step(256, missed=3), _step(1024)]
    best = ceiling(steps)
    assert best is not None and best.cells == 64
    assert not _step(16, depth_end=500).kept_up


def test_a_step_that_fell_behind_says_every_reason_in_plain_words() -> None:
    step = Step(4096, 100.0, 1000.0, 0.1, 0.2, 3, 10, 500, 20.0, 0.5, 4000)
    assert step.behind == [
        "3 ticks missed",
        "buffer grew 10->500 lines",
        "only 4000 of 4096 cells seen",
        "a cell had only 50.0% of its seconds",
    ]
    assert _step(16).behind == []


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert math.isnan(percentile([], 50))


def test_section_holds_command_machine_load_and_verdicts(tmp_path: Path) -> None:
    rows = [Row("cpu", "1.0%", "< 2 %", True), Row("rss", "200 MB", "< 150 MB", False, "a|b")]
    text = section(
        "Collector",
        date="d",
        machine="m",
        command="make bench-collector",
        load_start="1",
        load_end="2",
        rows=rows,
        notes=["profile here"],
    )
    doc = tmp_path / "b.md"
    append_section(text, doc)
    append_section(text, doc)
    content = doc.read_text()
    assert content.startswith("# Benchmarks")
    assert content.count("## Collector: d") == 2
    assert "`make bench-collector`" in content and "| cpu | 1.0% | < 2 % | met |" in content
    assert "| rss | 200 MB | < 150 MB | NOT met | a\\|b |" in markdown_table(rows)


def test_benchmark_collector_config_is_accepted_by_the_collector(tmp_path: Path) -> None:
    cfg = CollectorConfig("steady", tmp_path / "buf", 5020, 1883, 9999)
    path = tmp_path / "c.toml"
    path.write_text(config_text(cfg, "http://127.0.0.1:8086"))
    settings = load_settings(path)
    assert settings.influx.database == "steady"
    assert settings.collector.metrics_port == 9999
    assert settings.gx.modbus_enabled and settings.gx.mqtt_enabled


def test_synthetic_history_lines_carry_every_forecaster_series() -> None:
    start = 1_760_000_000 * 10**9
    series = synthetic_series(start, 120, 60)
    assert all(len(v) == 120 and np.isfinite(v).all() for v in series.values())
    lines = system_lines(series, start, 60, "bench")
    assert len(lines) == 120
    assert lines[1].startswith("system,site=bench battery_power_w=")
    assert lines[1].endswith(str(start + 60 * 10**9))
    assert all(f in lines[0] for f in ("pv_w=", "load_w=", "battery_soc_pct=", "battery_voltage_v="))


def test_finetune_estimate_adds_read_steps_evaluations_and_gate() -> None:
    est = estimate_finetune(
        read_s=10,
        first_step_s=15,
        step_s=7,
        num_steps=200,
        eval_steps=50,
        validation_windows=8,
        predict_ctx_train_s=0.5,
        gate_windows=24,
        predict_ctx_task_s=2,
    )
    assert est.train_s == 15 + 199 * 7
    assert est.eval_s == 4 * 8 * 0.5
    assert est.gate_s == 2 * 24 * 2
    assert est.total_s == 10 + est.train_s + est.eval_s + est.gate_s


def test_the_collector_bench_checks_every_1hz_table_and_polls_every_simulated_device_over_modbus(
    tmp_path: Path,
) -> None:
    stored = {s.measurement for s in tables.fields()}
    assert stored - {"gx_topic"} <= set(GRID_MEASUREMENTS), "a 1 Hz table the completeness check leaves out"
    config = tmp_path / "c.toml"
    config.write_text(
        config_text(CollectorConfig("bench", tmp_path / "buffer", 5020, 1883, 9108), "http://127.0.0.1:8086")
    )
    devices = load_settings(config).gx.modbus_devices
    assert sorted(devices) == sorted(f"{s}/{i}" for role, (s, i) in DEVICES.items() if role != "multi")
