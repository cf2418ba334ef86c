"""The run-folder writer: the report's contract, scores per variant, gaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.backtest import runfolder_writer as rf
from forecaster.frame import Forecast, mean_from_quantiles, to_frame
from forecaster.report.runfolder import load_run

NS = 1_000_000_000
T0 = 1_767_225_600 * NS
LEVELS = (0.1, 0.5, 0.9)


def forecast(model: str, cutoff_ns: int, level_w: float, fallback: str = "") -> Forecast:
    ts = cutoff_ns + 300 * NS * np.arange(4, dtype=np.int64)
    q = np.vstack([np.full(4, level_w - 50), np.full(4, level_w), np.full(4, level_w + 50)])
    lead_s = (ts - cutoff_ns) // NS + 300
    return Forecast(
        "t5m", "battery_power_w", model, "v", cutoff_ns, ts, lead_s, LEVELS, q, mean_from_quantiles(LEVELS, q), fallback
    )


def labelled(frame: pd.DataFrame, actual: pd.Series) -> pd.DataFrame:
    return frame.assign(actual=frame["ts_ns"].map(actual), regime="cycling", regime_at_issue="cycling")


def test_when_written_then_the_report_reads_the_run_folder_with_every_column(tmp_path: Path) -> None:
    cutoffs = [T0, T0 + 3600 * NS]
    forecasts = [(v, forecast(m, c, w)) for c in cutoffs for m, v, w in (
        ("base", "target_only", 500.0), ("finetuned", "target_only", 900.0), ("persistence", "none", 0.0),
    )]  # fmt: skip
    frame = to_frame([f for _, f in forecasts], run="r1").assign(variant=np.repeat([v for v, _ in forecasts], 4))
    frame.loc[0:3, "fallback"] = "RuntimeError: boom"
    actual = pd.Series(1000.0, index=T0 + 300 * NS * np.arange(40, dtype=np.int64))
    frame = labelled(frame, actual)
    out = rf.contract_frame(frame, "r1", 300)
    assert list(out.columns[:16]) == list(rf.HEAD_COLUMNS)
    assert {"q0.1", "q0.5", "q0.9", "fallback"} <= set(out.columns)
    assert out["lead_steps"].tolist()[:4] == [1, 2, 3, 4] and out["lead_minutes"].tolist()[:2] == [5.0, 10.0]
    assert out["fallback"].tolist()[:5] == [1, 1, 1, 1, 0]
    assert out["cutoff"].iloc[0] == "2026-01-01T00:00:00Z" and out["timestamp"].iloc[1] == "2026-01-01T00:05:00Z"

    scores = rf.score_table(frame, actual, 100.0, 100.0, 300)
    overall = scores[
        (scores["regime"] == "all") & (scores["lead_bucket"] == "all") & (scores["regime_by"] == "horizon")
    ]
    mae = dict(zip(overall["model"], overall["mae_w"], strict=True))
    assert mae == {"base": 500.0, "finetuned": 100.0, "persistence": 1000.0}
    skill = dict(zip(overall["model"], overall["skill"], strict=True))
    assert skill["finetuned"] == 0.9  # vs persistence on the same windows
    assert set(scores.loc[scores["model"] == "persistence", "variant"]) == {"none"}

    rf.write_run_folder(tmp_path / "r1", out, scores, {"run_id": "r1", "target": "battery_power_w", "unit": "W",
                                                       "base_model_is_stand_in": False})  # fmt: skip
    run = load_run(tmp_path / "r1")
    assert run.quantile_levels == LEVELS and len(run.forecasts) == len(out)
    assert not list(tmp_path.glob("r1/.*.tmp"))


def test_when_the_target_has_holes_then_gaps_lists_the_long_ones() -> None:
    target = np.ones(20)
    target[3:4] = np.nan  # 1 step: too short
    target[10:15] = np.nan
    assert rf.gaps(target, T0, 60 * NS, min_steps=2) == [
        {"start": "2026-01-01T00:10:00Z", "end": "2026-01-01T00:15:00Z"}
    ]
    assert rf.regime_share({1: "quiet", 2: "quiet", 3: "cycling", 4: "quiet"}) == {"cycling": 0.25, "quiet": 0.75}
