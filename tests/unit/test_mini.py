"""The mini Chronos-2: its synthetic data, its training script and the committed weights."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from forecaster.mini.synth import TIME_KEYS, make_tasks
from forecaster.mini.train import TrainConfig, run
from forecaster.models import load_pipeline, pipeline_quantiles
from forecaster.standin import MINI_WEIGHTS
from forecaster.windows import build_window


def test_synthetic_tasks_are_seeded_and_follow_the_dict_form() -> None:
    a, b = make_tasks(7, 30, 200, 400), make_tasks(7, 30, 200, 400)
    assert all(np.array_equal(x["target"], y["target"], equal_nan=True) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0]["target"], make_tasks(8, 1, 200, 400)[0]["target"], equal_nan=True)
    families = set()
    for task in a:
        n = task["target"].size
        assert 200 <= n <= 400 and np.isfinite(task["target"]).mean() > 0.5
        assert set(task["future_covariates"]) <= set(task["past_covariates"])
        assert all(v is None for v in task["future_covariates"].values())
        assert all(v.size == n for v in task["past_covariates"].values())
        families.add("bess" if "pv_power_w" in task["past_covariates"] or TIME_KEYS[0] in task["past_covariates"]
                     else "generic")  # fmt: skip
    assert families == {"bess", "generic"}


def test_the_script_trains_saves_a_loadable_model_and_its_card(tmp_path: Path) -> None:
    cfg = replace(TrainConfig(), steps=3, validation_tasks=4, tasks_per_chunk=8, chunk_steps=2, warmup_steps=1)
    log = run(cfg, tmp_path)
    assert log["steps_done"] == 3 and log["parameters"] < 2_000_000
    assert {"config.json", "model.safetensors", "training_log.json", "loss.png"} <= {p.name for p in tmp_path.iterdir()}
    assert json.loads((tmp_path / "training_log.json").read_text())["val"][-1]["final"] is True


def test_a_rerun_gives_bit_identical_weights_however_slow_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The card's claim: the schedule follows the step count only. Run B's clocks jump 40 s at every reading
    (a loaded machine): a learning rate that followed wall or CPU time would change its weights."""
    from safetensors.torch import load_file

    from forecaster.mini import train

    cfg = replace(
        TrainConfig(), steps=3, validation_tasks=4, tasks_per_chunk=8, chunk_steps=2, warmup_steps=1, minutes=10,
        cpu_minutes=10,
    )  # fmt: skip
    log_a = run(cfg, tmp_path / "a")
    slow = itertools.count(0.0, 40.0)
    monkeypatch.setattr(train.time, "monotonic", lambda: next(slow))
    monkeypatch.setattr(train.time, "process_time", lambda: next(slow))
    log_b = run(cfg, tmp_path / "b")
    assert log_a["steps_done"] == log_b["steps_done"] == 3 and "stopped_early" not in log_b
    assert log_b["wall_s"] > 60  # the fake clock did run
    a, b = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("a", "b"))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


def test_the_committed_weights_load_and_forecast_within_two_million_parameters() -> None:
    pipeline = load_pipeline(str(MINI_WEIGHTS), 1)
    assert sum(p.numel() for p in pipeline.model.parameters()) <= 2_000_000
    assert pipeline.model_context_length == 1024 and len(pipeline.quantiles) == 21
    card = (MINI_WEIGHTS / "MODEL_CARD.md").read_text()
    assert "synthetic" in card and "python -m forecaster.mini.train" in card
    t = np.arange(3000)
    context = {"battery_power_w": 1000 * np.sin(2 * np.pi * t / 1440)}
    window = build_window("t", 3000 * 60 * 10**9, 60 * 10**9, context, target="battery_power_w",
                          past_covariates=[], known_covariates=[], horizon_steps=60)  # fmt: skip
    q = pipeline_quantiles(pipeline, window, 2048)
    assert q.shape == (21, 60) and np.isfinite(q).all() and (np.diff(q, axis=0) >= 0).all()
