"""A synthetic backtest run folder with controlled differences, for tests and for trying the report.

It writes exactly the run-folder contract (forecasts.csv + manifest.json). Errors are drawn as
scale x gain x noise, so `gains` sets how much better or worse each model/variant is in each regime; a
model equal to another (gain 1.0) differs from it only by independent noise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from forecaster.run_contract import FORECASTS_FILE, MANIFEST_FILE, NO_VARIANT, PLAN_FORECAST, VARIANTS

CLASSIC_VARIANTS = tuple(v for v in VARIANTS if v != PLAN_FORECAST)  # a task without the plan and PV forecast
FORECAST_PAIRS = (
    *(("base", v) for v in CLASSIC_VARIANTS),
    *(("finetuned", v) for v in CLASSIC_VARIANTS),
    ("persistence", NO_VARIANT),
    ("seasonal_naive", NO_VARIANT),
)
ERROR_SCALE_W = {"quiet": 8.0, "cycling": 300.0, "transition": 200.0}
BASELINE_GAIN = {"persistence": 1.6, "seasonal_naive": 1.4}


@dataclass(frozen=True)
class SyntheticSpec:
    """What the synthetic run contains. gains[(regime, model, variant)] multiplies that cell's error."""

    seed: int = 7
    windows: dict[str, int] = field(default_factory=lambda: {"quiet": 30, "cycling": 30, "transition": 8})
    horizon_steps: int = 60
    levels: tuple[float, ...] = (0.1, 0.5, 0.9)
    gains: dict[tuple[str, str, str], float] = field(default_factory=dict)
    stand_in: bool = False
    pairs: tuple[tuple[str, str], ...] = FORECAST_PAIRS
    fallback_windows: int = 0


def finetune_better_on_cycling(seed: int = 7, stand_in: bool = False) -> SyntheticSpec:
    """Fine-tuned 40 % better on cycling, equal on quiet; all covariates cut cycling error by ~26 %."""
    gains: dict[tuple[str, str, str], float] = {}
    for model in ("base", "finetuned"):
        ft = 0.6 if model == "finetuned" else 1.0
        gains[("cycling", model, "target_only")] = ft
        gains[("cycling", model, "past_covariates")] = ft * 0.9
        gains[("cycling", model, "all_covariates")] = ft * 0.74
    return SyntheticSpec(seed=seed, gains=gains, stand_in=stand_in)


def _actuals(regime: str, steps: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(steps, dtype=float)
    if regime == "quiet":
        return rng.normal(0.0, 5.0, steps)
    if regime == "cycling":
        phase = rng.uniform(0, 2 * np.pi)
        return 1500.0 * np.sin(2 * np.pi * t / 45.0 + phase) + rng.normal(0.0, 50.0, steps)
    return np.where(t < steps // 2, 0.0, -1200.0) + rng.normal(0.0, 30.0, steps)


def _bucket(lead_minutes: float) -> str:
    for low, high in ((0, 15), (15, 30), (30, 60), (60, 120)):
        if lead_minutes <= high:
            return f"{low}-{high}m"
    return "120m+"


def _window_rows(
    spec: SyntheticSpec, regime: str, cutoff: pd.Timestamp, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Columns of every (model, variant) forecast of one window, as arrays."""
    steps = spec.horizon_steps
    actual = _actuals(regime, steps, rng)
    common = rng.normal(0.0, 1.0, steps)
    leads = np.arange(1, steps + 1)
    growth = 0.6 + 0.8 * leads / steps  # error grows with lead time
    stamps = np.asarray((cutoff + pd.to_timedelta(leads, unit="min")).strftime("%Y-%m-%dT%H:%M:%S+00:00"))
    buckets = np.array([_bucket(float(k)) for k in leads])
    columns: dict[str, list[np.ndarray]] = {}
    for model, variant in spec.pairs:
        gain = BASELINE_GAIN.get(model, spec.gains.get((regime, model, variant), 1.0))
        sigma = ERROR_SCALE_W[regime] * gain * growth
        median = actual + sigma * (0.5 * common + 0.87 * rng.normal(0.0, 1.0, steps))
        learned = model in ("base", "finetuned")
        values = {
            "model": np.full(steps, model),
            "model_version": np.full(steps, "stand-in" if spec.stand_in and learned else "v1"),
            "variant": np.full(steps, variant),
            "cutoff": np.full(steps, cutoff.strftime("%Y-%m-%dT%H:%M:%S+00:00")),
            "timestamp": stamps,
            "lead_steps": leads,
            "lead_minutes": leads.astype(float),
            "lead_bucket": buckets,
            "regime": np.full(steps, regime),
            "regime_at_issue": np.full(steps, "quiet" if regime == "quiet" else "cycling"),
            "actual": actual,
            "mean": median,
            "median": median,
            "fallback": np.zeros(steps, dtype=int),
        }
        for level in spec.levels:
            values[f"q{level:g}"] = median + sigma * NormalDist().inv_cdf(level)
        for name, array in values.items():
            columns.setdefault(name, []).append(array)
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def write_synthetic_run(run_dir: Path, spec: SyntheticSpec) -> Path:
    """Write forecasts.csv and manifest.json for `spec` into run_dir (created) and return run_dir."""
    rng = np.random.default_rng(spec.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    regimes = [r for r, n in spec.windows.items() for _ in range(n)]
    order = rng.permutation(len(regimes))
    split = pd.Timestamp("2026-03-08T00:00:00Z")
    frames = []
    for i, index in enumerate(order):
        cutoff = split + pd.Timedelta(hours=int(i))
        frames.append(pd.DataFrame(_window_rows(spec, regimes[index], cutoff, rng)))
    forecasts = pd.concat(frames, ignore_index=True)
    forecasts.insert(0, "run_id", "synthetic")
    forecasts.insert(1, "task", "battery_power")
    forecasts.insert(2, "target", "battery_power_w")
    if spec.fallback_windows:
        first = sorted(forecasts["cutoff"].unique())[: spec.fallback_windows]
        forecasts.loc[forecasts["cutoff"].isin(first) & (forecasts["model"] == "finetuned"), "fallback"] = 1
    forecasts.to_csv(run_dir / FORECASTS_FILE, index=False)
    end = split + pd.Timedelta(hours=len(regimes) + 1)
    total = sum(spec.windows.values())
    manifest = {
        "run_id": "synthetic",
        "created_utc": "2026-03-12T00:00:00Z",
        "task": "battery_power",
        "target": "battery_power_w",
        "unit": "W",
        "resolution": "1m",
        "horizon_steps": spec.horizon_steps,
        "context_steps": 512,
        "start": "2026-03-01T00:00:00Z",
        "split": split.isoformat(),
        "end": end.isoformat(),
        "seed": spec.seed,
        "base_model": "stand-in-tiny" if spec.stand_in else "amazon/chronos-2",
        "base_model_is_stand_in": spec.stand_in,
        "finetune": {
            "steps": 50,
            "learning_rate": 1e-5,
            "mode": "lora",
            "train_range": ["2026-03-01T00:00:00Z", "2026-03-07T00:00:00Z"],
            "validation_range": ["2026-03-07T00:00:00Z", split.isoformat()],
            "adapter_version": "synthetic-1",
        },
        "data": {
            "series": {"battery_power_w": {"measurement": "battery", "field": "power_w"}},
            "target_buckets": int((end - pd.Timestamp("2026-03-01T00:00:00Z")).total_seconds() // 60),
            "target_buckets_with_data": int((end - pd.Timestamp("2026-03-01T00:00:00Z")).total_seconds() // 60) - 210,
            "gaps": [{"start": "2026-03-04T10:00:00Z", "end": "2026-03-04T13:30:00Z"}],
            "regime_share": {r: round(n / total, 4) for r, n in spec.windows.items()},
            "regime_hours": {
                "training": {"quiet": 100.0, "cycling": 50.0, "transition": 18.0},
                "evaluation": {r: float(n) for r, n in spec.windows.items()},
            },
            "dataset": "simulated",
        },
        "quiet_threshold_w": 100,
        "quiet_threshold": {"value_w": 100, "how": "absolute override (forecaster.quiet_threshold_w)"},
        "wql_floor_w": 100.0,
    }
    (run_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return run_dir
