"""`make demo`'s closing table: every model's row, the stand-in's rows tagged as in the report, the others not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.demo_forecast import summary_lines

HEADER = (
    "model,model_version,variant,regime_by,regime,lead_bucket,mae_w,rmse_w,wql,coverage_80,skill,n_windows,n_points"
)
ROWS = [  # (model, variant, regime, lead bucket, MAE W, skill)
    ("base", "all_covariates", "all", "all", 490.3, 0.125),
    ("finetuned", "all_covariates", "all", "all", 466.2, 0.169),
    ("gbm", "all_covariates", "all", "all", 482.0, 0.141),
    ("persistence", "none", "all", "all", 561.0, 0.0),
    ("finetuned", "all_covariates", "quiet", "all", 26.7, 0.03),  # not an all-windows row: not shown
    ("gbm", "past_covariates", "all", "all", 470.0, 0.16),  # not a shown variant
]


def run_folder(tmp_path: Path, stand_in: bool) -> Path:
    lines = [HEADER] + [f"{m},v,{var},horizon,{r},{lead},{mae},1,1,0.8,{skill},120,7200" for m, var, r, lead, mae, skill
                        in ROWS]  # fmt: skip
    (tmp_path / "scores.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "manifest.json").write_text(json.dumps({"base_model_is_stand_in": stand_in}))
    return tmp_path


@pytest.mark.parametrize("stand_in", [True, False])
def test_the_demo_table_lists_each_model_once_and_tags_only_the_stand_ins_rows(tmp_path: Path, stand_in: bool) -> None:
    lines = summary_lines(run_folder(tmp_path, stand_in))
    assert lines[0].split() == ["model", "covariates", "MAE", "skill", "windows"]
    body = lines[1:]
    assert len(body) == 4 and all(line.rstrip().endswith("120") for line in body)
    tag = "[STAND-IN]"
    by_start = {line.split(tag)[0].split("  ")[0].strip(): line for line in body}
    assert set(by_start) == {"base", "fine-tuned", "gradient boosting (site-trained)", "persistence"}
    assert (tag in by_start["base"]) is stand_in and (tag in by_start["fine-tuned"]) is stand_in
    assert tag not in by_start["gradient boosting (site-trained)"] and tag not in by_start["persistence"]
    assert "466 W" in by_start["fine-tuned"] and "0.17" in by_start["fine-tuned"]
    columns = {line.index("all_covariates") for line in body if "all_covariates" in line}
    assert len(columns) == 1  # one column, however long the labels
