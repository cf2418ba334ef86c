"""Registry (versions, atomic active pointer, rollback, pruning, lock), cron parsing and fine-tune splits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from forecaster import finetune as ft
from forecaster.config import ForecastTask
from forecaster.registry import Registry, RegistryLocked
from forecaster.scheduler import cron_trigger, previous_fire
from forecaster.windows import NS


def adapter(tmp_path: Path, content: bytes) -> Path:
    src = tmp_path / f"src-{content.hex()}"
    src.mkdir()
    (src / "adapter_model.safetensors").write_bytes(content)
    (src / "adapter_config.json").write_text("{}")
    return src


def test_when_versions_are_promoted_and_rolled_back_then_active_follows(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "models")
    assert reg.active() is None and reg.versions() == []
    a = reg.add("ft-a", adapter(tmp_path, b"a"), {"mode": "lora"})
    b = reg.add("ft-b", adapter(tmp_path, b"b"), {"mode": "lora"})
    assert a.manifest["adapter_sha256"] != b.manifest["adapter_sha256"]
    assert json.loads((b.path / "manifest.json").read_text())["version"] == "ft-b"
    reg.set_active("ft-a")
    reg.set_active("ft-b")
    assert reg.active().version == "ft-b"  # type: ignore[union-attr]
    assert reg.rollback() == ("ft-a", []) and reg.active().version == "ft-a"  # type: ignore[union-attr]
    assert reg.rollback() == (None, []) and reg.active() is None  # back to base only
    with pytest.raises(KeyError):
        reg.rollback()
    with pytest.raises(KeyError):
        reg.set_active("ft-unknown")


def test_when_pruning_then_the_newest_k_and_the_active_version_stay(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "models")
    for name in ("ft-1", "ft-2", "ft-3", "ft-4"):
        reg.add(name, adapter(tmp_path, name.encode()), {})
    reg.set_active("ft-1")
    assert reg.prune(keep=2) == ["ft-2"]
    assert [v.version for v in reg.versions()] == ["ft-1", "ft-3", "ft-4"]


def test_when_the_lock_is_held_then_a_second_fine_tune_is_refused(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "models")
    with reg.lock(), pytest.raises(RegistryLocked), reg.lock():
        pass
    with reg.lock():
        pass  # released


@pytest.mark.parametrize(
    ("expr", "now", "expected"),
    [
        ("0 3 * * 0", datetime(2026, 1, 7, 12, tzinfo=UTC), datetime(2026, 1, 4, 3, tzinfo=UTC)),  # Sunday
        ("0 3 * * sun", datetime(2026, 1, 7, 12, tzinfo=UTC), datetime(2026, 1, 4, 3, tzinfo=UTC)),
        ("30 2 * * 1-5", datetime(2026, 1, 4, 12, tzinfo=UTC), datetime(2026, 1, 2, 2, 30, tzinfo=UTC)),  # Fri
        ("*/20 * * * * *", datetime(2026, 1, 4, 12, 0, 50, tzinfo=UTC), datetime(2026, 1, 4, 12, 0, 40, tzinfo=UTC)),
    ],
)
def test_cron_uses_crontab_weekdays_and_optional_seconds(expr: str, now: datetime, expected: datetime) -> None:
    assert previous_fire(expr, now) == expected


def test_when_cron_has_the_wrong_number_of_fields_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="5 fields"):
        cron_trigger("0 3 *")


def test_finetune_split_keeps_validation_and_gate_targets_out_of_training() -> None:
    task = ForecastTask(
        name="t",
        resolution="1h",
        context_steps=24,
        horizon_steps=6,
        cadence="1h",
        past_covariates=["battery_soc_pct"],
        known_covariates=["tod_sin"],
    )
    end = 1_767_571_200 * NS + 1234
    split = ft.make_split(end, 3600, train_days=4, validation_days=1, gate_days=1)
    assert split.end_ns % (3600 * NS) == 0 and split.end_ns - split.gate_start_ns == 86400 * NS
    n = (split.end_ns - split.train_start_ns) // (3600 * NS)
    series = {"battery_power_w": np.arange(n, dtype=float), "battery_soc_pct": np.ones(n)}
    train, validation = ft.training_inputs(series, split.train_start_ns, task, split, context_steps=24)
    assert len(train) == 1 and train[0]["target"].max() < 96  # 4 training days of hourly steps
    assert train[0]["future_covariates"] == {"tod_sin": None}
    assert set(train[0]["past_covariates"]) == {"battery_soc_pct", "tod_sin"}
    ends = [v["target"][-1] for v in validation]
    assert validation and min(ends) >= 96 + 6 - 1 and max(ends) < 120  # horizons inside the validation day


@pytest.mark.parametrize(
    ("created", "due"),
    [
        ([], True),  # never fine-tuned, and the schedule has fired
        (["2026-01-04T03:00:05+00:00"], False),  # a version since Sunday 03:00
        (["2026-01-03T23:00:00+00:00"], True),  # only older versions
    ],
)
def test_finetune_is_due_only_when_the_schedule_fired_since_the_last_version(created: list[str], due: bool) -> None:
    from forecaster.commands.finetune import is_due

    assert is_due("0 3 * * sun", created, datetime(2026, 1, 7, 12, tzinfo=UTC)) is due
    assert is_due("", created, datetime(2026, 1, 7, 12, tzinfo=UTC)) is False  # schedule off
