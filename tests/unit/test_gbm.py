"""The site-trained gradient-boosting forecaster on simulated site data (the simulator's physics)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench.simsite import minute_series
from forecaster import baselines
from forecaster.backtest.ablation import variant_task
from forecaster.config import ForecastTask
from forecaster.finetune import Split, make_split
from forecaster.gbm import GbmForecaster, GbmParams, GbmUnavailable, train_gbm
from forecaster.metrics import ABS_ERR, SUM_COLUMNS, N
from forecaster.report.stats import paired_estimate, resample_counts
from forecaster.rolling import actual_after, rolling_cutoffs, window_at
from forecaster.windows import NS, Window

TASK = ForecastTask(name="intraday")
Site = tuple[dict[str, np.ndarray], int, Split]
Trained = dict[str, GbmForecaster]
WINDOWS = 200  # held-back windows, one every 72 min
PARAMS = GbmParams(stride_steps=10, leads_per_cutoff=15, max_rounds=150)


@pytest.fixture(scope="module")
def site() -> Site:
    """24 simulated days: train 12, validation 2, held back 10."""
    series, start = minute_series(seed=11, first_day=20_100, days=24)
    end = start + len(series["battery_power_w"]) * 60 * NS
    return series, start, make_split(end, 60, 12.0, 2.0, 10.0)


@pytest.fixture(scope="module")
def trained(site: Site) -> Trained:
    series, start, split = site
    return {
        v: train_gbm(series, start, variant_task(TASK, v), split, PARAMS) for v in ("target_only", "all_covariates")
    }


def window_sums(
    predict: Callable[[Window], np.ndarray],
    series: dict[str, np.ndarray],
    start: int,
    task: ForecastTask,
    split: Split,
) -> np.ndarray:
    """Per held-back window: [n, sum |error|, 0...] (the report's sums layout)."""
    rows = []
    for cutoff in rolling_cutoffs(split.gate_start_ns, split.end_ns, task.horizon_steps * 60 * NS, WINDOWS, 60 * NS):
        window = window_at(series, start, task, cutoff)
        actual = actual_after(series[task.target], start, 60 * NS, cutoff, task.horizon_steps)
        row = np.zeros(len(SUM_COLUMNS))
        row[N] = actual.size
        row[ABS_ERR] = np.abs(actual - predict(window)).sum()
        rows.append(row)
    return np.array(rows)


def test_with_covariates_it_beats_persistence_beyond_noise(site: Site, trained: Trained) -> None:
    series, start, split = site
    counts = resample_counts(WINDOWS, 1000, 0, "gbm")
    persistence = window_sums(lambda w: baselines.persistence(w, (0.5,))[0], series, start, TASK, split)
    covariates = window_sums(lambda w: trained["all_covariates"].predict(w)[1], series, start, TASK, split)
    vs_persistence = paired_estimate(persistence, covariates, counts, "mae")
    assert vs_persistence.diff.high < 0, vs_persistence  # MAE lower, and the paired 95 % CI excludes 0


def test_quantiles_are_ordered_and_bracket_most_actuals(site: Site, trained: Trained) -> None:
    series, start, split = site
    model = trained["all_covariates"]
    inside = []
    for cutoff in rolling_cutoffs(split.gate_start_ns, split.end_ns, 3600 * NS, 20, 60 * NS):
        q = model.predict(window_at(series, start, TASK, cutoff))
        assert q.shape == (3, TASK.horizon_steps)
        assert (np.diff(q, axis=0) >= 0).all()
        actual = actual_after(series[TASK.target], start, 60 * NS, cutoff, TASK.horizon_steps)
        inside.append(((actual >= q[0]) & (actual <= q[2])).mean())
    assert 0.5 < float(np.mean(inside)) <= 1.0


def test_saved_model_is_text_and_forecasts_the_same_after_loading(site: Site, trained: Trained, tmp_path: Path) -> None:
    series, start, split = site
    model = trained["all_covariates"]
    model.save(tmp_path / "gbm")
    assert sorted(p.name for p in (tmp_path / "gbm").iterdir()) == ["gbm.json", "q0.1.txt", "q0.5.txt", "q0.9.txt"]
    assert (tmp_path / "gbm" / "q0.5.txt").read_text().startswith("tree")
    loaded = GbmForecaster.load(tmp_path / "gbm")
    window = window_at(series, start, TASK, split.gate_start_ns + 3600 * NS)
    np.testing.assert_allclose(loaded.predict(window), model.predict(window))
    assert loaded.meta["rows"]["train"] > 0 and loaded.meta["library"].startswith("lightgbm")


def test_training_never_reads_the_held_back_range(site: Site, trained: Trained) -> None:
    series, start, split = site
    gate_index = (split.gate_start_ns - start) // (60 * NS)
    poisoned = {k: v.copy() for k, v in series.items()}
    for values in poisoned.values():
        values[gate_index:] = 1e6
    model = train_gbm(poisoned, start, variant_task(TASK, "target_only"), split, PARAMS)
    window = window_at(series, start, variant_task(TASK, "target_only"), split.gate_start_ns)
    np.testing.assert_array_equal(model.predict(window), trained["target_only"].predict(window))


def test_a_window_with_other_covariates_is_refused_with_a_clear_error(site: Site, trained: Trained) -> None:
    series, start, split = site
    window = window_at(series, start, variant_task(TASK, "target_only"), split.gate_start_ns)
    with pytest.raises(GbmUnavailable, match="missing"):
        trained["all_covariates"].predict(window)


def test_too_little_history_is_refused_with_a_clear_error(site: Site) -> None:
    series, start, split = site
    short = replace(split, train_start_ns=split.val_start_ns - 2 * 86400 * NS)
    with pytest.raises(GbmUnavailable, match="too little training data"):
        train_gbm(series, start, TASK, short, replace(PARAMS, min_data_in_leaf=10_000))
