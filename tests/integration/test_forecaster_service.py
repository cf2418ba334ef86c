"""Forecaster against a real InfluxDB filled with synthetic BESS history and a tiny offline Chronos-2."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.common.config import ForecasterSettings, ForecastTask
from collector.common.config.forecaster import FinetuneSettings
from collector.common.influx import InfluxClient
from forecaster.jobs import ForecastService
from forecaster.models import ModelSet, load_pipeline
from forecaster.registry import Registry
from forecaster.store import ForecastStore
from forecaster.windows import NS
from tests.conftest import fc_synthetic_rows

pytestmark = pytest.mark.integration

DAY_NS = 86400 * NS
START_NS = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
TASK = ForecastTask(name="t5m", resolution="5m", context_steps=576, horizon_steps=24, cadence="5m")


def settings_for(tiny: Path, registry: Path, **finetune: object) -> ForecasterSettings:
    ft = FinetuneSettings(
        task="t5m",
        train_days=2,
        validation_days=0.5,
        gate_days=0.5,
        gate_windows=6,
        context_steps=128,
        num_steps=6,
        learning_rate=1e-2,
        batch_size_rows=18,
        eval_steps=3,
        **finetune,
    )  # type: ignore[arg-type]
    return ForecasterSettings(base_model=str(tiny), registry_dir=registry, tasks=[TASK], finetune=ft)


def fill(influx: InfluxClient, days: float = 4.0) -> None:
    rows = fc_synthetic_rows(START_NS, START_NS + int(days * DAY_NS))
    for i in range(0, len(rows), 5000):
        influx.write(rows[i : i + 5000])


def service(influx: InfluxClient, settings: ForecasterSettings, models: ModelSet | None) -> ForecastService:
    return ForecastService(settings, "shop", ForecastStore(influx, "shop"), Registry(settings.registry_dir), models)


def forecast_rows(influx: InfluxClient) -> list[dict[str, object]]:
    series = influx.query('SELECT * FROM "forecast" GROUP BY *')
    return [{**s.tags, **row} for s in series for row in s.rows()]


def test_when_a_run_is_repeated_then_every_model_is_written_once_at_the_predicted_times(
    influx: InfluxClient, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    fill(influx)
    settings = settings_for(tiny_chronos_dir, tmp_path / "models")
    models = ModelSet(load_pipeline(str(tiny_chronos_dir), 2), str(tiny_chronos_dir))
    svc = service(influx, settings, models)
    at = START_NS + 3 * DAY_NS + 12 * 3600 * NS + 7 * 60 * NS  # 12:07 -> cut-off 12:05
    first = svc.forecast(TASK, at_ns=at)
    svc.forecast(TASK, at_ns=at)
    rows = forecast_rows(influx)
    cutoff = START_NS + 3 * DAY_NS + 12 * 3600 * NS + 5 * 60 * NS
    assert first.cutoff_ns == cutoff and not first.skipped
    assert {r["model"] for r in rows} == {"base", "persistence", "seasonal_naive"}
    assert len(rows) == 3 * TASK.horizon_steps  # re-run overwrote, did not duplicate
    base = sorted((r for r in rows if r["model"] == "base"), key=lambda r: int(r["time"]))
    assert [int(r["time"]) for r in base] == [cutoff + i * 300 * NS for i in range(TASK.horizon_steps)]
    assert base[0]["lead"] == "5m" and base[-1]["lead"] == "2h" and base[-1]["lead_bucket"] == "1-6h"
    assert all(int(r["cutoff_ns"]) == cutoff and r["run"] == "live" for r in rows)
    assert all(r["q0_1"] <= r["median"] <= r["q0_9"] for r in rows)
    assert base[0]["model_version"] == f"base:{tiny_chronos_dir}"
    assert all(not r.get("fallback") for r in rows)
