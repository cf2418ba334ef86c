"""The mini Chronos-2 stand-in learns from a site: a LoRA fine-tune on simulated site data (the scheduled
job's own code, run_finetune, on data in a real influxd) is promoted by the gate, forecasts the held-back
windows better (MAE and quantile loss lower, though not yet beyond noise), and the same gate refuses a
deliberately harmed candidate."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.simsite import minute_series, system_lines
from bess_common.influx import InfluxClient
from forecaster import finetune as ft
from forecaster.config import FinetuneSettings, ForecasterSettings, ForecastTask
from forecaster.finetune_job import run_finetune
from forecaster.frame import monotone
from forecaster.metrics import point_terms
from forecaster.models import ModelSet, load_pipeline
from forecaster.registry import Registry
from forecaster.report.stats import paired_estimate, resample_counts
from forecaster.rolling import actual_after, rolling_cutoffs, window_at
from forecaster.standin import build_stand_in
from forecaster.store import ForecastStore
from forecaster.windows import NS
from forecaster.zoo.chronos import ChronosBase, ChronosPipeline
from forecaster.zoo.protocol import ForecastModel, Resources, median_of

pytestmark = pytest.mark.integration

DAYS = 14
TASK = ForecastTask(name="intraday", context_steps=1024)  # the mini's context (longer is cut to 1024)
FINETUNE = FinetuneSettings(
    task=TASK.name,
    train_days=8,
    validation_days=1,
    gate_days=5,
    gate_windows=100,
    num_steps=300,
    learning_rate=2e-3,
    context_steps=1024,
    eval_steps=75,
)


def window_sums(model: ForecastModel, levels: tuple[float, ...], series: dict[str, np.ndarray], start: int,
                split: ft.Split) -> np.ndarray:  # fmt: skip
    """Per held-back window (the gate's cut-offs): the metric terms of forecaster.metrics, summed."""
    cutoffs = rolling_cutoffs(split.gate_start_ns, split.end_ns, TASK.horizon_steps * 60 * NS, FINETUNE.gate_windows,
                              60 * NS)  # fmt: skip
    rows = []
    for cutoff in cutoffs:
        actual = actual_after(series[TASK.target], start, 60 * NS, cutoff, TASK.horizon_steps)
        q = monotone(model.predict(window_at(series, start, TASK, cutoff), levels))
        rows.append(point_terms(actual, median_of(q, levels), dict(zip(levels, q, strict=True))).sum(axis=0))
    return np.array(rows)


def test_a_lora_finetune_of_the_mini_is_promoted_forecasts_better_and_a_harmed_one_is_refused(
    influx: InfluxClient, tmp_path: Path
) -> None:
    series, start = minute_series(seed=11, first_day=20_100, days=DAYS)
    lines = system_lines(series, start)
    for i in range(0, len(lines), 5000):
        influx.write(lines[i : i + 5000])
    end = start + DAYS * 86400 * NS
    base_dir = build_stand_in(tmp_path / "mini")
    settings = ForecasterSettings(
        base_model=str(base_dir), registry_dir=tmp_path / "models", tasks=[TASK], num_threads=1, finetune=FINETUNE
    )
    registry = Registry(settings.registry_dir)
    pipeline = load_pipeline(str(base_dir), 1)
    torch.manual_seed(0)
    result = run_finetune(settings, ForecastStore(influx, "shop"), registry, pipeline, str(base_dir), at_ns=end)

    assert result.promoted, result.manifest["gate"]
    assert registry.active() is not None
    split = ft.make_split(end, 60, FINETUNE.train_days, FINETUNE.validation_days, FINETUNE.gate_days)
    resident = ModelSet(pipeline, str(base_dir))
    base = window_sums(ChronosBase(Resources(resident, context_steps=1024)), resident.levels, series, start, split)
    tuned_model = ChronosPipeline(result.tuned, "tuned", 1024)
    tuned = window_sums(tuned_model, resident.levels, series, start, split)
    counts = resample_counts(len(base), 1000, 0, "mini-lora")
    mae = paired_estimate(base, tuned, counts, "mae")
    wql = paired_estimate(base, tuned, counts, "wql")
    print(f"held-back windows: {len(base)}; MAE {mae}; WQL {wql}")
    # Lower on the held-back windows, both the median's MAE and the quantile loss. Not asserted: that the
    # gain is beyond noise. Measured here (100 windows): MAE -2.3 % (95 % CI -9.6 % .. +3.4 %), WQL -4.2 %
    # (-10.1 % .. +0.8 %): the paired intervals still include zero (docs/forecast-quality.md).
    assert mae.diff.value < 0 and wql.diff.value < 0, (mae, wql)

    harmed = copy.deepcopy(result.tuned)
    with torch.no_grad():
        for name, weights in harmed.model.named_parameters():
            if "lora_B" in name:
                weights.add_(torch.randn_like(weights) * 0.5)
    decision, scores = ft.gate_against_active(
        harmed, resident, registry.active(), series, split.train_start_ns, task=TASK, split=split, settings=settings
    )
    assert not decision.promote, scores
    assert scores["incumbent"] == result.version  # the harmed one was gated against the promoted version
