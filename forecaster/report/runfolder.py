"""Read and validate a backtest run folder (forecasts.csv + manifest.json) into a typed RunData."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from bess_common.errors import FatalError
from forecaster.metrics import DEFAULT_WQL_FLOOR_W
from forecaster.regimes import REGIMES
from forecaster.report.labels import PowerScale, power_scale
from forecaster.run_contract import (
    FALLBACK_COLUMN,
    FORECASTS_FILE,
    MANIFEST_FILE,
    REQUIRED_COLUMNS,
    REQUIRED_MANIFEST_KEYS,
    column_level,
)

REGIME_ORDER = REGIMES


class RunFolderError(FatalError):
    """The run folder lacks files, columns or manifest keys. `problems` holds one plain line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class RunData:
    """A backtest run: its manifest, its long forecast table and the quantile levels present."""

    path: Path
    manifest: dict[str, Any]
    forecasts: pd.DataFrame
    quantile_levels: tuple[float, ...]

    @property
    def stand_in(self) -> bool:
        """True when the base model was a stand-in (the real weights were unreachable)."""
        return bool(self.manifest.get("base_model_is_stand_in", False))

    @cached_property
    def scale(self) -> PowerScale:
        """The unit power is shown in (W, kW, MW), from the size of the actuals."""
        return power_scale(self.forecasts["actual"].to_numpy(dtype=float), self.unit)

    @property
    def wql_floor_w(self) -> float:
        """The per-step WQL floor the run was scored with (forecaster.metrics' default for older runs)."""
        return float(self.manifest.get("wql_floor_w", DEFAULT_WQL_FLOOR_W))

    @property
    def unit(self) -> str:
        """Unit of the target (W)."""
        return str(self.manifest.get("unit", "W"))


def quantile_levels_of(columns: list[str]) -> dict[float, str]:
    """Quantile levels present in the column names (`q0.1` -> 0.1), read from the names, never assumed."""
    levels = {level: name for name in columns if (level := column_level(name)) is not None}
    return dict(sorted(levels.items()))


def _check_files(run_dir: Path) -> list[str]:
    if not run_dir.is_dir():
        return [f"run folder {run_dir} does not exist or is not a directory"]
    return [f"{run_dir} lacks {name}" for name in (FORECASTS_FILE, MANIFEST_FILE) if not (run_dir / name).is_file()]


def _read_manifest(path: Path) -> tuple[dict[str, Any], list[str]]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {}, [f"{path} is not readable JSON: {exc}"]
    if not isinstance(manifest, dict):
        return {}, [f"{path} must hold a JSON object"]
    missing = [key for key in REQUIRED_MANIFEST_KEYS if key not in manifest]
    return manifest, [f"{path} lacks key {key!r}" for key in missing]


def _read_forecasts(path: Path) -> tuple[pd.DataFrame, list[str]]:
    try:
        frame = pd.read_csv(path, low_memory=False)
    except (OSError, ValueError) as exc:
        return pd.DataFrame(), [f"{path} is not a readable CSV: {exc}"]
    problems = [f"{path} lacks column {name!r}" for name in REQUIRED_COLUMNS if name not in frame.columns]
    if "median" not in frame.columns and "q0.5" not in frame.columns:
        problems.append(f"{path} lacks a point forecast column ('median' or 'q0.5')")
    if not quantile_levels_of(list(frame.columns)):
        problems.append(f"{path} lacks quantile columns (named like 'q0.1', 'q0.9')")
    return frame, problems


def _normalise(frame: pd.DataFrame, levels: dict[float, str]) -> pd.DataFrame:
    frame = frame.copy()
    frame["cutoff"] = pd.to_datetime(frame["cutoff"], utc=True, format="ISO8601").dt.as_unit("ns")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601").dt.as_unit("ns")
    if "median" not in frame.columns:
        frame["median"] = frame["q0.5"]
    numeric = ["actual", "median", "lead_minutes", *levels.values()]
    for name in numeric:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    frame["lead_steps"] = pd.to_numeric(frame["lead_steps"], errors="coerce").astype("Int64")
    frame[FALLBACK_COLUMN] = pd.to_numeric(frame[FALLBACK_COLUMN], errors="coerce").fillna(0).astype(int)
    for name in ("model", "variant", "lead_bucket", "regime"):
        frame[name] = frame[name].astype(str)
    return frame


def load_run(run_dir: Path) -> RunData:
    """Read RUN/forecasts.csv and RUN/manifest.json; raise RunFolderError naming everything missing."""
    problems = _check_files(run_dir)
    if problems:
        raise RunFolderError(problems)
    manifest, manifest_problems = _read_manifest(run_dir / MANIFEST_FILE)
    frame, frame_problems = _read_forecasts(run_dir / FORECASTS_FILE)
    problems = manifest_problems + frame_problems
    if not problems and frame.empty:
        problems.append(f"{run_dir / FORECASTS_FILE} has no rows")
    if problems:
        raise RunFolderError(problems)
    levels = quantile_levels_of(list(frame.columns))
    frame = _normalise(frame, levels)
    bad_times = int(frame["cutoff"].isna().sum() + frame["timestamp"].isna().sum())
    if bad_times:
        raise RunFolderError([f"{bad_times} cutoff/timestamp values are not ISO-8601 times"])
    return RunData(path=run_dir, manifest=manifest, forecasts=frame, quantile_levels=tuple(levels))


def ordered(values: list[str], preferred: tuple[str, ...]) -> list[str]:
    """Known names in their preferred order, then unknown ones alphabetically."""
    known = [name for name in preferred if name in values]
    return known + sorted(set(values) - set(preferred))


def lead_bucket_order(frame: pd.DataFrame) -> list[str]:
    """Lead buckets ordered by the shortest lead they contain (\"0-15m\" before \"15-30m\")."""
    firsts = frame.groupby("lead_bucket")["lead_minutes"].min().sort_values()
    return [str(name) for name in firsts.index]
