"""A STAND-IN for Chronos-2, for boxes that cannot reach the pretrained weights: the mini Chronos-2.

The mini (forecaster/mini/weights, its MODEL_CARD.md) is a ~1.4 M-parameter Chronos-2 pretrained by this
project from random weights on synthetic series only (`python -m forecaster.mini.train`). It runs the whole
pipeline (forecast, LoRA fine-tune, backtest, report) and, unlike a random model, it forecasts and learns
from a site's data; but its numbers say nothing about Chronos-2. Everything it touches is labelled
`stand-in:mini` (manifest: base_model_is_stand_in = true; the report tags it [STAND-IN]).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

MINI_WEIGHTS = Path(__file__).resolve().parent / "mini" / "weights"
WEIGHT_FILES = ("config.json", "model.safetensors")
STAND_IN_VERSION = "stand-in:mini"
MARKER_FILE = "STAND_IN"
# The LoRA learning rate for fine-tuning the mini (`[forecaster.finetune] learning_rate`): the default 1e-5
# is sized for the 120 M-parameter Chronos-2 and leaves a 1.4 M model's adapter almost unchanged. Checked on
# simulated days that no test or page evaluates on (docs/forecast-quality.md): 2e-3 and 5e-3 did equally.
MINI_FINETUNE_LEARNING_RATE = 2e-3


def is_stand_in(directory: Path) -> bool:
    """True when the directory holds a stand-in written by build_stand_in."""
    return (Path(directory) / MARKER_FILE).is_file()


def weights_sha256(directory: Path = MINI_WEIGHTS) -> str:
    """sha256 of the mini's weights file."""
    return hashlib.sha256((Path(directory) / "model.safetensors").read_bytes()).hexdigest()


def build_stand_in(directory: Path) -> Path:
    """Copy the mini Chronos-2 into `directory` (reused when it holds the same weights); returns it."""
    directory = Path(directory)
    marker = directory / MARKER_FILE
    digest = weights_sha256()
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")).get("sha256") == digest:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    for name in WEIGHT_FILES:
        shutil.copyfile(MINI_WEIGHTS / name, directory / name)
    info = {"what": "mini Chronos-2 stand-in, pretrained on synthetic series only", "sha256": digest}
    marker.write_text(json.dumps(info) + "\n", encoding="utf-8")
    return directory


def stand_in_notice(error: str, directory: Path) -> str:
    """The ONE line saying the real model is unavailable and the stand-in is used instead."""
    return (
        f"base model unavailable, using a STAND-IN ({STAND_IN_VERSION}, {directory}): a 1.4 M-parameter "
        f"Chronos-2 pretrained on synthetic series only; its numbers say nothing about Chronos-2. Cause: {error}"
    )
