"""A site-trained gradient-boosting forecaster (LightGBM, quantile loss), the "what a data scientist would
train in a minute" baseline beside Chronos-2.

One booster per quantile level, pooled over leads (the lead is a feature), trained on rows cut from the
same training range as the LoRA fine-tune; the validation range (the fine-tune's checkpoint selection data)
only picks the number of boosting rounds (early stopping), exactly as it picks the fine-tune's checkpoint.
Features and labels come from forecaster/gbm_features.py (one code path for training and forecasting).

Saved as LightGBM's own text model files plus gbm.json (no pickle): `GbmForecaster.save` / `load`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bess_common.logs import get_logger
from forecaster.config import ForecastTask
from forecaster.drivers import Drivers, with_history
from forecaster.finetune import Split
from forecaster.gbm_features import FeatureError, feature_names, schema_of, window_features
from forecaster.rolling import actual_after, window_at
from forecaster.windows import DAY_S, NS, Window, skip_reason

log = get_logger("forecaster.gbm")
GBM_LEVELS: tuple[float, ...] = (0.1, 0.5, 0.9)
META_FILE = "gbm.json"


@dataclass(frozen=True)
class GbmParams:
    """Training settings (chosen on the training range only; recorded with every version)."""

    levels: tuple[float, ...] = GBM_LEVELS
    num_leaves: int = 31
    learning_rate: float = 0.05
    max_rounds: int = 300
    min_rounds: int = 50  # the validation range picks the round count in [min_rounds, max_rounds]
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.9
    bagging_fraction: float = 0.8
    stride_steps: int = 5  # a training cut-off every N grid steps
    leads_per_cutoff: int = 20  # leads sampled per training cut-off (all leads for validation)
    validation_stride_steps: int = 15
    threads: int = 1  # OpenMP threads spin under contention: one thread beat two 3x on a busy 2-core box
    seed: int = 0


class GbmUnavailable(RuntimeError):
    """Too little data to train, or a saved model that does not fit the window; one line saying why."""


@dataclass
class GbmForecaster:
    """Boosters per level + the feature schema they were trained on."""

    levels: tuple[float, ...]
    boosters: list[Any]
    names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def predict(self, window: Window) -> np.ndarray:
        """Quantiles (len(levels), H): anchor + predicted change, sorted across levels (no crossing)."""
        names = feature_names(window)
        if names != self.names:
            missing = sorted(set(self.names) - set(names))
            extra = sorted(set(names) - set(self.names))
            raise GbmUnavailable(
                f"the window's covariates do not match the trained model (missing {missing}, unexpected {extra})"
            )
        rows, last = window_features(window)
        out = np.vstack([b.predict(rows, num_threads=1) for b in self.boosters]) + last
        return np.sort(out, axis=0)

    def save(self, directory: Path) -> None:
        """LightGBM text models (one per level) and gbm.json into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = []
        for level, booster in zip(self.levels, self.boosters, strict=True):
            name = f"q{level:g}.txt"
            booster.save_model(str(directory / name))
            files.append(name)
        meta = {**self.meta, "levels": list(self.levels), "features": self.names, "files": files}
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> GbmForecaster:
        """Read a saved model; GbmUnavailable when the folder is not one."""
        import lightgbm as lgb

        path = Path(directory) / META_FILE
        if not path.is_file():
            raise GbmUnavailable(f"{directory} holds no gradient-boosting model ({META_FILE} missing)")
        meta = json.loads(path.read_text(encoding="utf-8"))
        boosters = [lgb.Booster(model_file=str(Path(directory) / f)) for f in meta["files"]]
        return cls(tuple(float(v) for v in meta["levels"]), boosters, list(meta["features"]), meta)


def _feature_context(task: ForecastTask) -> int:
    """Context the features need: one day plus the horizon plus an hour of lags (at most the task's)."""
    season = DAY_S // task.resolution_s
    return int(min(task.context_steps, season + task.horizon_steps + 64))


def rows_at(
    series: Mapping[str, np.ndarray],
    grid_start_ns: int,
    task: ForecastTask,
    cutoffs: list[int],
    *,
    leads: int | None,
    rng: np.random.Generator,
    drivers: Drivers | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(X, y, names) from the windows at `cutoffs`; `leads` sampled per window (None = all)."""
    step_ns = task.resolution_s * NS
    context = _feature_context(task)
    xs, ys = [], []
    names: list[str] = []
    for cutoff in cutoffs:
        window = window_at(series, grid_start_ns, task, cutoff, context, drivers=drivers)
        if skip_reason(window, task.min_context_fraction, task.max_last_gap_steps):
            continue
        try:
            rows, last = window_features(window)
        except FeatureError:
            continue
        names = names or feature_names(window)
        label = actual_after(series[task.target], grid_start_ns, step_ns, cutoff, task.horizon_steps) - last
        keep = np.flatnonzero(np.isfinite(label))
        if leads is not None and keep.size > leads:
            keep = np.sort(rng.choice(keep, leads, replace=False))
        xs.append(rows[keep])
        ys.append(label[keep])
    if not xs:
        return np.empty((0, 0)), np.empty(0), names
    return np.vstack(xs), np.concatenate(ys), names


def cutoff_range(lo_ns: int, hi_ns: int, task: ForecastTask, stride_steps: int, context_steps: int) -> list[int]:
    """Cut-offs every `stride_steps` from lo + context whose whole horizon ends by hi."""
    step_ns = task.resolution_s * NS
    first = lo_ns + context_steps * step_ns
    last = hi_ns - task.horizon_steps * step_ns
    return list(range(first, last + 1, stride_steps * step_ns))


def pick_rounds(history: Mapping[str, Any], params: GbmParams) -> int:
    """The round count with the lowest validation loss, at least `min_rounds` (all rounds without validation):
    a floor, because a short validation range often favours stopping after a round or two."""
    losses = list(history.get("validation", {}).get("quantile", []))
    if len(losses) <= params.min_rounds:
        return params.max_rounds if not losses else len(losses)
    return params.min_rounds + int(np.argmin(losses[params.min_rounds - 1 :]))


def train_gbm(
    series: Mapping[str, np.ndarray],
    grid_start_ns: int,
    task: ForecastTask,
    split: Split,
    params: GbmParams | None = None,
    *,
    drivers: Drivers | None = None,
) -> GbmForecaster:
    """Train on [split.train_start, split.val_start) (labels included), stop early on the validation range
    [val_start, gate_start); the gate range is never read. GbmUnavailable when there is too little data.
    `series` holds the history of the task's driver covariates (forecaster.drivers.with_history); `drivers`
    gives their horizon as known at each training cut-off."""
    import lightgbm as lgb

    params = params or GbmParams()
    rng = np.random.default_rng(params.seed)
    series = with_history(series, drivers, task.known_covariates, grid_start_ns, task.resolution_s * NS)
    started = time.monotonic()
    # the first training windows may have a short context: features need only a day, so start after it
    context = min(_feature_context(task), DAY_S // task.resolution_s)
    train_cut = cutoff_range(split.train_start_ns, split.val_start_ns, task, params.stride_steps, context)
    x, y, names = rows_at(
        series, grid_start_ns, task, train_cut, leads=params.leads_per_cutoff, rng=rng, drivers=drivers
    )
    if y.size < 20 * params.min_data_in_leaf:
        raise GbmUnavailable(f"too little training data: {y.size} rows from {len(train_cut)} cut-offs")
    val_cut = cutoff_range(split.val_start_ns, split.gate_start_ns, task, params.validation_stride_steps, 0)
    xv, yv, _ = rows_at(series, grid_start_ns, task, val_cut, leads=None, rng=rng, drivers=drivers)
    log.info("gbm_rows", task=task.name, train_rows=int(y.size), validation_rows=int(yv.size), features=len(names))
    lgb_params = {
        "objective": "quantile",
        "num_leaves": params.num_leaves,
        "learning_rate": params.learning_rate,
        "min_data_in_leaf": params.min_data_in_leaf,
        "feature_fraction": params.feature_fraction,
        "bagging_fraction": params.bagging_fraction,
        "bagging_freq": 1,
        "num_threads": params.threads,
        "seed": params.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }
    dtrain = lgb.Dataset(x, y, feature_name=names, free_raw_data=False)
    dval = lgb.Dataset(xv, yv, reference=dtrain) if yv.size else None
    boosters, rounds = [], []
    for level in params.levels:
        history: dict[str, Any] = {}
        booster = lgb.train(
            {**lgb_params, "alpha": level, "metric": "quantile"},
            dtrain,
            num_boost_round=params.max_rounds,
            valid_sets=[dval] if dval is not None else None,
            valid_names=["validation"],
            callbacks=[lgb.record_evaluation(history)] if dval is not None else None,
        )
        best = pick_rounds(history, params)
        booster.best_iteration = best
        boosters.append(booster)
        rounds.append(int(best))
        log.info("gbm_level_trained", level=level, rounds=int(best), elapsed_s=round(time.monotonic() - started, 1))
    meta = {
        "library": f"lightgbm {lgb.__version__}",
        "params": asdict(params),
        "rounds": rounds,
        "rows": {"train": int(y.size), "validation": int(yv.size)},
        "schema": schema_of(window_at(series, grid_start_ns, task, train_cut[-1], 2)),
        "target": task.target,
        "resolution": task.resolution,
        "horizon_steps": task.horizon_steps,
        "train_s": round(time.monotonic() - started, 1),
    }
    return GbmForecaster(tuple(params.levels), boosters, names, meta)
