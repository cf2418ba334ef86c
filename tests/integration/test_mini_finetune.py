"""The mini Chronos-2 stand-in learns from a site: a LoRA fine-tune on simulated site data (the scheduled
job's own code, run_finetune, on data in a real influxd) is promoted by the gate, forecasts the held-back
gate windows better (lower MAE, its 95 % interval below zero; docs/forecast-quality.md), and
the same gate refuses a deliberately harmed candidate."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from bench.mini_finetune_study import MINI_TASK, mini_finetune_settings
from bench.simsite import minute_series, system_lines
from bess_common.influx import InfluxClient
from forecaster import finetune as ft
from forecaster.config import ForecasterSettings
from forecaster.finetune_job import run_finetune
from forecaster.models import ModelSet, load_pipeline
from forecaster.registry import Registry
from forecaster.standin import build_stand_in
from forecaster.store import ForecastStore
from forecaster.windows import NS

pytestmark = pytest.mark.integration

# The design was fixed on development seeds with bench/mini_finetune_study.py before this seed was ever run
# (docs/forecast-quality.md): 100 gate windows gave an interval about +-11 % wide, too wide for the 7-14 %
# gain measured on the development seeds, so the gate holds 200 windows over 10 days; the seed is one the
# study never used, so the test measures and does not select.
SEED = 17
DAYS = 19  # train 8 + validation 1 + gate 10
TASK = MINI_TASK
FINETUNE = mini_finetune_settings(  # sized for 19 simulated days
    train_days=8,
    validation_days=1,
    gate_days=10,
    gate_windows=200,  # one per 72 min: 1 h horizons do not overlap
)


def test_a_lora_finetune_of_the_mini_is_promoted_forecasts_better_and_a_harmed_one_is_refused(
    influx: InfluxClient, tmp_path: Path
) -> None:
    series, start = minute_series(seed=SEED, first_day=20_100, days=DAYS)
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

    gate = registry.versions()[0].manifest["gate"]  # what `models` and an operator read
    assert result.promoted and registry.active() is not None, gate
    assert gate["incumbent"] == "base" and gate["windows"]["all"] == 200
    change, low, high = gate["mae_change_w"]["all"]  # fine-tuned - base on the held-back gate windows
    base_mae = gate["incumbent_mae_w"]["all"]
    print(f"MAE {base_mae:.1f} W -> {base_mae + change:.1f} W: {change / base_mae:+.1%} [{low / base_mae:+.1%},"
          f" {high / base_mae:+.1%}]; by regime {gate['mae_change_w']}")  # fmt: skip
    # Lower on the held-back windows beyond noise: the whole 95 % interval below zero.
    # Measured (the first run of seed 17, after the design was committed): MAE 403.6 W -> 372.6 W, -7.7 %
    # [-14.1 %, -1.5 %]; cycling -17.4 % [-27.3, -8.7], quiet +3.9 % [-14.9, +33.7] (within noise), transitions
    # +4.8 % [+0.3, +10.7] (worse: no covariate announces a switch; within the gate's margin).
    assert low < change < high < 0, gate

    harmed = copy.deepcopy(result.tuned)
    with torch.no_grad():
        for name, weights in harmed.model.named_parameters():
            if "lora_B" in name:
                weights.add_(torch.randn_like(weights) * 0.5)
    split = ft.make_split(end, 60, FINETUNE.train_days, FINETUNE.validation_days, FINETUNE.gate_days)
    resident = ModelSet(pipeline, str(base_dir))
    decision, scores = ft.gate_against_active(
        harmed, resident, registry.active(), series, split.train_start_ns, task=TASK, split=split, settings=settings
    )
    assert not decision.promote, scores
    assert scores["incumbent"] == result.version  # the harmed one was gated against the promoted version
