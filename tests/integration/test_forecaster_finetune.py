"""Fine-tune on synthetic history in a real InfluxDB with a tiny offline Chronos-2: version, reload, gate."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from bess_common.influx import InfluxClient
from forecaster import finetune as ft
from forecaster.finetune_job import run_finetune
from forecaster.models import ModelSet, load_pipeline
from forecaster.registry import Registry, RegistryLocked
from forecaster.store import ForecastStore
from forecaster.windows import NS, Window, chronos_input
from forecaster.zoo import Kind
from tests.integration.test_forecaster_service import DAY_NS, START_NS, TASK, fill, settings_for

pytestmark = pytest.mark.integration

END_NS = START_NS + 4 * DAY_NS


def test_when_finetuned_then_a_version_differs_from_base_and_reloads_identically(
    influx: InfluxClient, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    fill(influx)
    settings = settings_for(tiny_chronos_dir, tmp_path / "models")
    store = ForecastStore(influx, "shop")
    registry = Registry(settings.registry_dir)
    pipeline = load_pipeline(str(tiny_chronos_dir), 2)
    result = run_finetune(settings, store, registry, pipeline, str(tiny_chronos_dir), at_ns=END_NS, tty=False)

    version = registry.get(result.version)
    manifest = json.loads((version.path / "manifest.json").read_text())
    assert manifest["base_model"] == str(tiny_chronos_dir) and manifest["num_steps"] == 6
    assert manifest["adapter_sha256"] and (version.adapter_dir / "adapter_config.json").is_file()
    assert manifest["data"]["to"].startswith("2026-01-05T00:00")
    assert (registry.active() is not None) == result.promoted == manifest["gate"]["promote"]
    # the gate compares the models as the forecasts use them: at the task's context, not the training one
    assert manifest["gate"]["context_steps"] == TASK.context_steps != settings.finetune.context_steps

    series = store.read_grid([TASK.target, *TASK.past_covariates], END_NS - DAY_NS, 300, 288)
    from forecaster.rolling import window_at

    window = window_at(series, END_NS - DAY_NS, TASK, END_NS - 6 * 3600 * NS)
    assert not result.tuned.model.training
    tuned_q = np.sort(
        result.tuned.predict(
            [chronos_input(window)],
            prediction_length=TASK.horizon_steps,
            context_length=TASK.context_steps,
            batch_size=9,
        )[0][0].numpy(),
        axis=0,
    )
    resident = ModelSet(load_pipeline(str(tiny_chronos_dir), 2), str(tiny_chronos_dir))
    base_q = resident.predict(window, "base", TASK.context_steps)
    resident.set_adapter(version.version, version.adapter_dir)
    reloaded_q = resident.predict(window, "finetuned", TASK.context_steps)
    again_q = resident.predict(window, "finetuned", TASK.context_steps)
    base_again_q = resident.predict(window, "base", TASK.context_steps)

    assert np.abs(reloaded_q - base_q).max() > 1e-3  # fine-tuning changed the forecast
    np.testing.assert_allclose(reloaded_q, tuned_q, rtol=1e-4, atol=1e-3)  # registry reload == in-memory
    np.testing.assert_array_equal(reloaded_q, again_q)  # eval mode: deterministic
    np.testing.assert_allclose(base_again_q, base_q, rtol=1e-5, atol=1e-4)  # adapter switched off = base
    counts = resident.param_counts()
    assert 0 < counts["adapter"] < counts["base"]  # one copy of the base, a small adapter on top


def test_when_the_candidate_is_worse_then_the_gate_refuses_it(
    influx: InfluxClient, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    fill(influx)
    settings = settings_for(tiny_chronos_dir, tmp_path / "models")
    split = ft.make_split(END_NS, 300, 2, 0.5, 0.5)
    n = int((split.end_ns - split.train_start_ns) // (300 * NS))
    series = ForecastStore(influx, "shop").read_grid([TASK.target, *TASK.past_covariates], split.train_start_ns, 300, n)

    class LastValue:
        name: ClassVar[str] = "last"
        label: ClassVar[str] = "last"
        kind: ClassVar[Kind] = "baseline"
        takes_covariates: ClassVar[bool] = False
        version = "v"
        offset_w = 0.0

        def predict(self, window: Window, levels: Sequence[float]) -> np.ndarray:
            y = window.target
            return np.full((len(levels), TASK.horizon_steps), y[np.isfinite(y)][-1] + self.offset_w)

    class Worse(LastValue):
        offset_w = 400.0

    levels = (0.1, 0.5, 0.9)
    refused, scores = ft.gate_backtest(
        Worse(),
        LastValue(),
        levels=levels,
        series=series,
        grid_start_ns=split.train_start_ns,
        task=TASK,
        split=split,
        settings=settings,
    )
    accepted, _ = ft.gate_backtest(
        LastValue(),
        Worse(),
        levels=levels,
        series=series,
        grid_start_ns=split.train_start_ns,
        task=TASK,
        split=split,
        settings=settings,
    )
    assert not refused.promote and "not better" in refused.reasons[0]
    assert accepted.promote
    assert scores["cutoffs"] == 6 and scores["candidate_mae_w"]["all"] > scores["incumbent_mae_w"]["all"]


def test_when_a_finetune_holds_the_lock_then_a_second_one_is_refused(tiny_chronos_dir: Path, tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    with registry.lock(), pytest.raises(RegistryLocked), registry.lock():
        pass
    with registry.lock():  # released after use
        assert registry.versions() == []


def test_when_mode_is_full_then_the_version_holds_weights_and_serves_as_finetuned(
    influx: InfluxClient, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    fill(influx)
    settings = settings_for(tiny_chronos_dir, tmp_path / "models", mode="full")
    registry = Registry(settings.registry_dir)
    pipeline = load_pipeline(str(tiny_chronos_dir), 2)
    result = run_finetune(
        settings, ForecastStore(influx, "shop"), registry, pipeline, str(tiny_chronos_dir), at_ns=END_NS, tty=False
    )
    version = registry.get(result.version)
    assert result.manifest["mode"] == "full" and (version.adapter_dir / "config.json").is_file()
    assert not (version.adapter_dir / "adapter_config.json").exists()
    series = ForecastStore(influx, "shop").read_grid([TASK.target, *TASK.past_covariates], END_NS - DAY_NS, 300, 288)
    from forecaster.rolling import window_at

    window = window_at(series, END_NS - DAY_NS, TASK, END_NS - 6 * 3600 * NS)
    models = ModelSet(pipeline, str(tiny_chronos_dir))
    base_q = models.predict(window, "base", TASK.context_steps)
    models.set_adapter(version.version, version.adapter_dir)
    assert np.abs(models.predict(window, "finetuned", TASK.context_steps) - base_q).max() > 1e-3
