"""Resident models on a tiny offline Chronos-2: levels read from the checkpoint, fallbacks, one base copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forecaster.forecast import run_models
from forecaster.modelbuild import TINY_SIZE, save_random_chronos2
from forecaster.models import BaseModelUnavailable, ModelSet, load_pipeline
from forecaster.windows import NS, Window, build_window

LEVELS_9 = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def tiny_with_levels(path: Path, levels: list[float], seed: int = 1) -> Path:
    save_random_chronos2(path, TINY_SIZE, seed=seed, quantiles=levels)
    return path


def window(n: int = 1500, horizon: int = 8) -> Window:
    t = np.arange(n, dtype=float)
    target = 1000 * np.sin(2 * np.pi * t / 1440)
    return build_window(
        "t",
        1_767_571_200 * NS,
        60 * NS,
        {"p": target, "v": 50 + target / 1000},
        target="p",
        past_covariates=["v"],
        known_covariates=["tod_sin", "tod_cos"],
        horizon_steps=horizon,
    )


def test_when_the_checkpoint_has_other_levels_then_forecasts_use_them(tmp_path: Path) -> None:
    path = tiny_with_levels(tmp_path / "m9", LEVELS_9)
    models = ModelSet(load_pipeline(str(path), 2), str(path))
    assert models.levels == tuple(LEVELS_9)
    outcome = run_models(window(), "battery_power_w", models, context_steps=512)
    assert {f.model for f in outcome.forecasts} == {"base", "persistence", "seasonal_naive"}
    assert not outcome.failures
    for f in outcome.forecasts:
        assert f.levels == tuple(LEVELS_9) and f.quantiles.shape == (9, 8)
        assert np.all(np.diff(f.quantiles, axis=0) >= 0)  # no quantile crossing
        np.testing.assert_array_equal(f.median, f.quantiles[4])


def test_when_a_model_fails_then_it_falls_back_to_persistence_tagged(tiny_chronos_dir: Path) -> None:
    models = ModelSet(load_pipeline(str(tiny_chronos_dir), 2), str(tiny_chronos_dir))
    short = window(n=300)  # less than a day of 1-min context: seasonal naive cannot run
    outcome = run_models(short, "battery_power_w", models, context_steps=512)
    by = {f.model: f for f in outcome.forecasts}
    assert "seasonal_naive" not in by  # a baseline that cannot run is not drawn as a copy of persistence
    assert "needs 1450 steps" in outcome.unavailable["seasonal_naive"]
    assert not by["base"].fallback
    baselines_only = run_models(short, "battery_power_w", None, 512, base_error="cannot load base model")
    base = next(f for f in baselines_only.forecasts if f.model == "base")
    assert base.fallback == "RuntimeError: cannot load base model" and base.model_version == "base:unavailable"


def test_when_an_adapter_is_active_then_base_weights_are_shared_not_copied(
    tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    from peft import LoraConfig, get_peft_model

    pipeline = load_pipeline(str(tiny_chronos_dir), 2)
    base_ptrs = {n: p.data_ptr() for n, p in pipeline.model.named_parameters()}
    # Make an adapter the way fit() does (on a copy), perturb it so it changes forecasts, save it.
    donor = load_pipeline(str(tiny_chronos_dir), 2).model
    peft = get_peft_model(donor, LoraConfig(r=4, lora_alpha=8, target_modules=["self_attention.q", "self_attention.v"]))
    for name, param in peft.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)
    peft.save_pretrained(str(tmp_path / "adapter"))

    models = ModelSet(pipeline, str(tiny_chronos_dir))
    w = window()
    base_before = models.predict(w, "base", 512)
    models.set_adapter("v1", tmp_path / "adapter")
    shared = {
        n.replace("base_model.model.", "").replace(".base_layer", ""): p.data_ptr()
        for n, p in models.pipeline.model.named_parameters()
        if "lora_" not in n
    }
    assert shared == base_ptrs  # the same tensors: one resident copy of the base
    counts = models.param_counts()
    assert 0 < counts["adapter"] < 0.5 * counts["base"]
    tuned = models.predict(w, "finetuned", 512)
    np.testing.assert_allclose(models.predict(w, "base", 512), base_before, rtol=1e-5, atol=1e-4)
    assert np.abs(tuned - base_before).max() > 1e-3
    models.set_adapter(None, None)
    np.testing.assert_allclose(models.predict(w, "base", 512), base_before, rtol=1e-5, atol=1e-4)
    with pytest.raises(RuntimeError, match="no fine-tuned adapter"):
        models.predict(w, "finetuned", 512)


def test_when_the_base_model_path_is_missing_then_one_line_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(BaseModelUnavailable) as info:
        load_pipeline(str(tmp_path / "missing"), 2)
    message = str(info.value)
    assert "\n" not in message and "huggingface-cli download amazon/chronos-2 --local-dir DIR" in message
    assert "forecaster.base_model" in message


def test_when_the_active_version_is_a_full_checkpoint_then_it_serves_as_finetuned(tmp_path: Path) -> None:
    base_dir = tiny_with_levels(tmp_path / "base", LEVELS_9)
    full_dir = tiny_with_levels(tmp_path / "full", LEVELS_9, seed=2)  # other random weights = a "full fine-tune"
    models = ModelSet(load_pipeline(str(base_dir), 2), str(base_dir))
    w = window()
    base_q = models.predict(w, "base", 512)
    models.set_adapter("ft-full", full_dir)
    full_q = models.predict(w, "finetuned", 512)
    assert models.adapter_version == "ft-full" and np.abs(full_q - base_q).max() > 1e-3
    np.testing.assert_array_equal(models.predict(w, "base", 512), base_q)


class CrossingPipeline:
    """A pipeline whose raw quantiles cross (q0.1 = 5 > q0.5 = 1 < q0.9 = 3 at every step)."""

    quantiles = (0.1, 0.5, 0.9)
    model = None

    def predict(self, inputs: list[object], prediction_length: int, **kw: object) -> list[object]:
        import torch

        raw = torch.tensor([[5.0] * prediction_length, [1.0] * prediction_length, [3.0] * prediction_length])
        return [raw[None, :, :]]


def test_when_quantiles_cross_then_candidate_and_incumbent_get_the_same_sorted_median() -> None:
    from forecaster.rolling import median_forecaster
    from forecaster.zoo import Resources
    from forecaster.zoo.chronos import ChronosBase, ChronosPipeline

    pipeline = CrossingPipeline()
    levels = CrossingPipeline.quantiles
    candidate = median_forecaster(ChronosPipeline(pipeline, "cand", 512), levels)
    incumbent = median_forecaster(ChronosBase(Resources(ModelSet(pipeline, "x"), context_steps=512)), levels)
    w = window(n=100, horizon=4)
    np.testing.assert_array_equal(candidate(w), [3.0] * 4)  # the median of the sorted quantiles, not the raw 1.0
    np.testing.assert_array_equal(incumbent(w), candidate(w))
