"""The real fine-tune benchmark's pure parts: its config is accepted, its log is timed, its rows add up."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from bench.finetune_run import QUICK_OVERRIDES, RunResult, parse_events, result_rows, write_config
from forecaster.config import load_settings


def _log_line(event: str, at_s: float, **fields: object) -> str:
    ts = datetime.fromtimestamp(at_s, UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"event": event, "timestamp": ts, **fields})


def test_the_benchmark_config_keeps_every_finetune_default_except_the_overrides(tmp_path: Path) -> None:
    path = tmp_path / "ft.toml"
    write_config(path, "http://127.0.0.1:1", tmp_path / "model", tmp_path / "reg", {})
    settings = load_settings(path)
    assert settings.forecaster.finetune.num_steps == 200 and settings.forecaster.finetune.train_days == 28
    assert settings.forecaster.base_model == str(tmp_path / "model")
    write_config(path, "http://127.0.0.1:1", tmp_path / "model", tmp_path / "reg", QUICK_OVERRIDES)
    assert load_settings(path).forecaster.finetune.num_steps == QUICK_OVERRIDES["num_steps"]


def test_log_events_are_timed_from_the_start_and_other_output_is_skipped() -> None:
    start = 1_760_000_000.0
    output = "\n".join(
        [
            "Loading weights: 100%",
            _log_line("finetune_started", start + 12.5, steps=200),
            "{not json",
            _log_line("finetune_finished", start + 99.0, promoted=False),
        ]
    )
    events = parse_events(output, start)
    assert [(e, round(t, 3)) for e, t, _ in events] == [("finetune_started", 12.5), ("finetune_finished", 99.0)]
    assert events[1][2]["promoted"] is False


def test_rows_split_the_wall_time_at_start_last_evaluation_and_finish() -> None:
    events = [
        ("finetune_started", 10.0, {}),
        ("finetune_eval", 50.0, {}),
        ("finetune_eval", 100.0, {}),
        ("finetune_finished", 130.0, {"promoted": True}),
    ]
    rows = result_rows(RunResult(0, 135.0, 4321.0, events), telemetry_lines=1000, days=32, quick=False)
    assert rows[0].value == "2.2 min"
    assert "loaded 10 s" in rows[0].note and "2 evaluations 90 s" in rows[0].note
    assert "registration 30 s" in rows[0].note and "promoted: True" in rows[0].note
    assert rows[1].value.startswith("4,321")


def test_a_failed_run_is_one_row_with_its_exit_code_and_output() -> None:
    rows = result_rows(RunResult(1, 3.0, 0.0, [], "fine-tune failed: boom"), telemetry_lines=0, days=32, quick=False)
    assert len(rows) == 1 and rows[0].value == "exit 1" and "boom" in rows[0].note
