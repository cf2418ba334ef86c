"""Forecaster against a real InfluxDB filled with synthetic BESS history and a tiny offline Chronos-2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bess_common.influx import InfluxClient
from deploy.localservices import InfluxServer
from forecaster.config import FinetuneSettings, ForecasterSettings, ForecastTask
from forecaster.frame import Forecast, forecast_samples
from forecaster.jobs import ForecastService
from forecaster.models import ModelSet, load_pipeline
from forecaster.registry import Registry
from forecaster.store import ForecastStore
from forecaster.windows import NS
from tests.conftest import fc_synthetic_rows, run_cli

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
    )
    return ForecasterSettings(base_model=str(tiny), registry_dir=registry, tasks=[TASK], finetune=ft)


def fill(influx: InfluxClient, days: float = 4.0) -> None:
    rows = fc_synthetic_rows(START_NS, START_NS + int(days * DAY_NS))
    for i in range(0, len(rows), 5000):
        influx.write(rows[i : i + 5000])


def service(influx: InfluxClient, settings: ForecasterSettings, models: ModelSet | None) -> ForecastService:
    return ForecastService(settings, "shop", ForecastStore(influx, "shop"), Registry(settings.registry_dir), models)


def forecast_rows(influx: InfluxClient) -> list[dict[str, Any]]:
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


def _forecast(model: str, cutoff: int, medians: list[float], spread: float) -> Forecast:
    ts = cutoff + 300 * NS * np.arange(len(medians), dtype=np.int64)
    med = np.array(medians)
    q = np.vstack([med - spread, med, med + spread])
    return Forecast(
        "t5m", "battery_power_w", model, "v1", cutoff, ts, (ts - cutoff) // NS + 300, (0.1, 0.5, 0.9), q, med
    )


def test_when_scored_then_regimes_and_a_hand_computed_mae_land_in_influx(influx: InfluxClient, tmp_path: Path) -> None:
    task = ForecastTask(name="t5m", resolution="5m", context_steps=16, horizon_steps=3, cadence="5m")
    c1 = START_NS + 10 * 3600 * NS  # quiet before, cycling after
    c2 = START_NS + 20 * 3600 * NS  # quiet before and after
    actual = {
        c1 - 900 * NS: 0.0,
        c1 - 600 * NS: 0.0,
        c1 - 300 * NS: 0.0,
        c1: 1000.0,
        c1 + 300 * NS: 1200.0,
        c1 + 600 * NS: 800.0,
        c2 - 300 * NS: 5.0,
        c2: 10.0,
        c2 + 300 * NS: -20.0,
        c2 + 600 * NS: 30.0,
    }
    influx.write([f"system,site=shop battery_power_w={v} {t}" for t, v in actual.items()])
    forecasts = [
        _forecast("base", c1, [900, 1300, 800], 150),  # |err| 100, 100, 0; covered 3/3
        _forecast("persistence", c1, [0, 0, 0], 10),  # |err| 1000, 1200, 800
        _forecast("base", c2, [0, 0, 0], 15),  # |err| 10, 20, 30; covered 1/3
        _forecast("persistence", c2, [50, 50, 50], 10),  # |err| 40, 70, 20
    ]
    store = ForecastStore(influx, "shop")
    store.write_samples([s for f in forecasts for s in forecast_samples(f, "shop", "live")])
    settings = ForecasterSettings(
        registry_dir=tmp_path, tasks=[task], score_period="24h", finetune=FinetuneSettings(task="t5m")
    )
    svc = ForecastService(settings, "shop", store, Registry(tmp_path), None)
    end = START_NS + 24 * 3600 * NS
    assert svc.score(task, end_ns=end) > 0
    assert svc.score(task, end_ns=end) > 0  # idempotent: same period end, same tags -> overwritten

    rows = [{**s.tags, **r} for s in influx.query('SELECT * FROM "forecast_score" GROUP BY *') for r in s.rows()]
    by = {(r["model"], r["regime_by"], r["regime"], r["lead_bucket"]): r for r in rows}
    assert len(rows) == len(by) and all(int(r["time"]) == end and r["period"] == "24h" for r in rows)
    cycling = by[("base", "horizon", "cycling", "all")]
    quiet = by[("base", "horizon", "quiet", "all")]
    overall = by[("base", "horizon", "all", "all")]
    assert cycling["mae_w"] == pytest.approx(200 / 3) and cycling["n_windows"] == 1
    assert quiet["mae_w"] == pytest.approx(20.0) and quiet["coverage_80"] == pytest.approx(1 / 3)
    assert overall["mae_w"] == pytest.approx(260 / 6) and overall["n_windows"] == 2
    assert overall["rmse_w"] == pytest.approx(np.sqrt((100**2 * 2 + 10**2 + 20**2 + 30**2) / 6))
    assert overall["skill"] == pytest.approx(1 - (260 / 6) / (3130 / 6))
    assert by[("base", "issue", "quiet", "all")]["n_windows"] == 2  # both were issued in quiet
    assert ("base", "horizon", "transition", "all") not in by


def test_when_measured_values_after_the_cutoff_change_then_no_forecast_changes(
    influx: InfluxClient, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    """Leakage test: a forecast may depend only on data before its cut-off (and on timestamps)."""
    fill(influx)
    settings = settings_for(tiny_chronos_dir, tmp_path / "models")
    models = ModelSet(load_pipeline(str(tiny_chronos_dir), 2), str(tiny_chronos_dir))
    svc = service(influx, settings, models)
    at = START_NS + 3 * DAY_NS + 9 * 3600 * NS
    svc.forecast(TASK, at_ns=at)
    before = {(r["model"], r["time"]): r for r in forecast_rows(influx)}
    tampered = [
        f"system,site=shop battery_power_w={v},battery_voltage_v=60,battery_soc_pct=1,pv_w={v},load_w={-v} {t}"
        for t, v in ((at + k * 60 * NS, 9000.0 + 100 * k) for k in range(0, 300))
    ]
    influx.write(tampered)
    svc.forecast(TASK, at_ns=at)
    after = {(r["model"], r["time"]): r for r in forecast_rows(influx)}
    assert before.keys() == after.keys() and len(before) == 3 * TASK.horizon_steps
    for key, row in before.items():
        assert after[key]["median"] == pytest.approx(row["median"], rel=1e-6), key
        assert after[key]["q0_9"] == pytest.approx(row["q0_9"], rel=1e-6), key


def test_when_the_base_model_is_missing_then_predict_says_what_to_do_and_writes_baselines(
    influx: InfluxClient, influx_server: InfluxServer, tmp_path: Path
) -> None:
    fill(influx)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[influx]\nurl = "{influx_server.url}"\n[forecaster]\nbase_model = "{tmp_path / "nowhere"}"\n'
        f'registry_dir = "{tmp_path / "models"}"\n[forecaster.finetune]\ntask = "t5m"\n'
        '[[forecaster.tasks]]\nname = "t5m"\nresolution = "5m"\ncontext_steps = 576\nhorizon_steps = 24\n'
    )
    result = run_cli("forecaster", "predict", "--config", str(config), "--at", "2026-01-04T12:00:00")
    assert result.returncode == 1
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if "cannot load base model" in ln]
    assert len(lines) == 1 and "huggingface-cli download amazon/chronos-2 --local-dir DIR" in lines[0]
    rows = forecast_rows(influx)
    assert {r["model"] for r in rows} == {"base", "persistence", "seasonal_naive"}
    assert all(r.get("fallback") == "persistence" for r in rows if r["model"] == "base")
    assert all(not r.get("fallback") for r in rows if r["model"] != "base")


def test_when_fed_the_simulator_history_then_forecasts_and_regime_scores_land(
    influx: InfluxClient, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    """The collector schema as the simulator writes it (all measurements) feeds the forecaster unchanged."""
    from bess_common.lineproto import to_lines
    from collector.simulator.history import history_samples
    from collector.simulator.physics import BessPhysics

    samples = [
        s
        for s in history_samples(BessPhysics(7), START_NS, START_NS + 3 * DAY_NS, 60)
        if s.measurement in {"system", "battery"}
    ]
    lines = to_lines(samples)
    for i in range(0, len(lines), 5000):
        influx.write(lines[i : i + 5000])
    settings = settings_for(tiny_chronos_dir, tmp_path / "models")
    svc = service(influx, settings, ModelSet(load_pipeline(str(tiny_chronos_dir), 2), str(tiny_chronos_dir)))
    day3 = START_NS + 2 * DAY_NS
    results = [svc.forecast(TASK, at_ns=day3 + h * 3600 * NS) for h in range(0, 22)]
    assert all(not r.skipped and not r.failures for r in results)
    assert svc.score(TASK, end_ns=START_NS + 3 * DAY_NS) > 0
    scores = influx.query(
        'SELECT "mae_w", "n_windows" FROM "forecast_score" WHERE "regime_by" = \'horizon\' '
        'AND "lead_bucket" = \'all\' GROUP BY "model", "regime"'
    )
    by = {(s.tags["model"], s.tags["regime"]): s.rows()[0] for s in scores}
    assert by[("base", "all")]["n_windows"] == 22
    regimes_seen = {r for m, r in by if m == "base" and r != "all"}
    assert len(regimes_seen) >= 2 and regimes_seen <= {"quiet", "cycling", "transition"}
    assert sum(by[("base", r)]["n_windows"] for r in regimes_seen) == 22
