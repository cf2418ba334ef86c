"""An UNTRAINED stand-in for Chronos-2, for boxes that cannot reach the pretrained weights.

A small Chronos-2 (d_model 64, 3 layers) with random weights from a fixed seed. It exercises the whole
pipeline (forecast, LoRA fine-tune, backtest, report) but its forecasts say nothing about Chronos-2;
everything it touches is labelled `stand-in:untrained` (manifest: base_model_is_stand_in = true).
"""

from __future__ import annotations

import json
from pathlib import Path

from forecaster.modelbuild import save_random_chronos2

STAND_IN_VERSION = "stand-in:untrained"
MARKER_FILE = "STAND_IN_UNTRAINED"
STAND_IN_SIZE = {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 3, "num_heads": 4}


def is_stand_in(directory: Path) -> bool:
    """True when the directory holds a stand-in built by build_stand_in."""
    return (Path(directory) / MARKER_FILE).is_file()


def build_stand_in(directory: Path, seed: int = 0) -> Path:
    """Write the untrained stand-in into `directory` (reused when already there); returns the directory.

    Deterministic: the same seed gives the same weights. The global torch RNG is left as it was."""
    directory = Path(directory)
    if is_stand_in(directory) and (directory / "config.json").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    save_random_chronos2(directory, STAND_IN_SIZE, seed)
    (directory / MARKER_FILE).write_text(
        json.dumps({"what": "untrained random-weight Chronos-2 stand-in", "seed": seed}) + "\n", encoding="utf-8"
    )
    return directory


def stand_in_notice(error: str, directory: Path) -> str:
    """The ONE line saying the real model is unavailable and an untrained stand-in is used instead."""
    return (
        f"base model unavailable, using an UNTRAINED stand-in ({STAND_IN_VERSION}, {directory}): its numbers "
        f"say nothing about Chronos-2. Cause: {error}"
    )
