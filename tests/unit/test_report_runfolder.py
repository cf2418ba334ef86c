"""Reading and validating a backtest run folder; the report command's exit 2 on a bad folder."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from forecaster.commands import report as report_command
from forecaster.report.runfolder import RunFolderError, load_run, quantile_levels_of
from forecaster.report.synthetic import SyntheticSpec, write_synthetic_run
from forecaster.report.tables import build_tables

TINY = SyntheticSpec(seed=2, windows={"quiet": 3, "cycling": 3, "transition": 1}, horizon_steps=6)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_synthetic_run(tmp_path / "run", TINY)


def test_when_columns_are_named_q_levels_then_levels_are_read_from_the_names() -> None:
    columns = ["actual", "q0.05", "q0.1", "q0.5", "q0.9", "q0.95", "quality", "q1.5"]
    assert list(quantile_levels_of(columns)) == [0.05, 0.1, 0.5, 0.9, 0.95]


def test_when_run_folder_is_complete_then_it_loads_with_its_levels(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert run.quantile_levels == (0.1, 0.5, 0.9)
    assert run.forecasts["cutoff"].nunique() == 7
    assert str(run.forecasts["cutoff"].dt.tz) == "UTC"


def test_when_files_are_missing_then_the_error_names_each(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError) as caught:
        load_run(tmp_path / "empty")
    text = " ".join(caught.value.problems)
    assert "forecasts.csv" in text
    assert "manifest.json" in text


def test_when_columns_and_keys_are_missing_then_the_error_names_them(run_dir: Path) -> None:
    frame = pd.read_csv(run_dir / "forecasts.csv")
    frame.drop(columns=["regime", "lead_bucket"]).to_csv(run_dir / "forecasts.csv", index=False)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    del manifest["base_model_is_stand_in"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunFolderError) as caught:
        load_run(run_dir)
    problems = caught.value.problems
    assert any("'regime'" in p for p in problems)
    assert any("'lead_bucket'" in p for p in problems)
    assert any("'base_model_is_stand_in'" in p for p in problems)


def test_when_no_quantile_columns_then_the_error_says_so(run_dir: Path) -> None:
    frame = pd.read_csv(run_dir / "forecasts.csv")
    frame.drop(columns=["q0.1", "q0.5", "q0.9"]).to_csv(run_dir / "forecasts.csv", index=False)
    with pytest.raises(RunFolderError, match="quantile"):
        load_run(run_dir)


def test_when_run_folder_lacks_a_column_then_the_command_exits_2_naming_it(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(run_dir / "forecasts.csv")
    frame.drop(columns=["actual"]).to_csv(run_dir / "forecasts.csv", index=False)
    parser = argparse.ArgumentParser()
    report_command.configure(parser)
    code = report_command.main(parser.parse_args(["--run", str(run_dir), "--out", str(tmp_path / "out")]))
    assert code == 2
    assert "'actual'" in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.html").exists()


def test_when_more_quantile_levels_then_wql_uses_all_of_them(tmp_path: Path) -> None:
    three = load_run(write_synthetic_run(tmp_path / "three", TINY))
    nine = load_run(
        write_synthetic_run(tmp_path / "nine", dataclasses.replace(TINY, levels=(0.05, 0.1, 0.2, 0.5, 0.8, 0.9, 0.95)))
    )
    assert nine.quantile_levels == (0.05, 0.1, 0.2, 0.5, 0.8, 0.9, 0.95)
    wql_three = build_tables(three, resamples=20).row("cycling", "base", "target_only")
    wql_nine = build_tables(nine, resamples=20).row("cycling", "base", "target_only")
    assert wql_three is not None and wql_nine is not None
    assert wql_three.mae.value == pytest.approx(wql_nine.mae.value)  # same errors (same seed)...
    assert wql_three.wql.value != pytest.approx(wql_nine.wql.value)  # ...but more levels in the loss


def test_when_actuals_are_missing_then_those_points_are_not_scored(run_dir: Path) -> None:
    frame = pd.read_csv(run_dir / "forecasts.csv")
    total = build_tables(load_run(run_dir), resamples=20).row("all", "base", "target_only")
    frame.loc[frame["lead_steps"] == 1, "actual"] = float("nan")
    frame.to_csv(run_dir / "forecasts.csv", index=False)
    fewer = build_tables(load_run(run_dir), resamples=20).row("all", "base", "target_only")
    assert total is not None and fewer is not None
    assert fewer.n_points == total.n_points - total.n_windows


def test_when_scoring_one_cell_then_report_metrics_agree_with_forecaster_metrics(run_dir: Path) -> None:
    metrics = pytest.importorskip("forecaster.metrics")
    run = load_run(run_dir)
    row = build_tables(run, resamples=20).row("cycling", "finetuned", "all_covariates")
    frame = run.forecasts
    cell = frame[
        (frame["regime"] == "cycling") & (frame["model"] == "finetuned") & (frame["variant"] == "all_covariates")
    ]
    persistence = frame[(frame["regime"] == "cycling") & (frame["model"] == "persistence")]
    actual = cell["actual"].to_numpy()
    quantiles = {level: cell[f"q{level:g}"].to_numpy() for level in run.quantile_levels}
    assert row is not None
    assert row.mae.value == pytest.approx(metrics.mae(actual, cell["median"].to_numpy()))
    assert row.rmse.value == pytest.approx(metrics.rmse(actual, cell["median"].to_numpy()))
    assert row.wql.value == pytest.approx(metrics.weighted_quantile_loss(actual, quantiles, floor_w=run.wql_floor_w))
    assert row.coverage80.value == pytest.approx(metrics.coverage(actual, quantiles[0.1], quantiles[0.9]))
    mae_persistence = metrics.mae(persistence["actual"].to_numpy(), persistence["median"].to_numpy())
    assert row.skill.value == pytest.approx(metrics.skill(row.mae.value, mae_persistence))
