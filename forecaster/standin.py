"""An UNTRAINED stand-in for Chronos-2, for boxes that cannot reach the pretrained weights.

A small Chronos-2 (d_model 64, 3 layers) with random weights from a fixed seed. It exercises the whole
pipeline (forecast, LoRA fine-tune, backtest, report) but its forecasts say nothing about Chronos-2;
everything it touches is labelled `stand-in:untrained` (manifest: base_model_is_stand_in = true).
"""

from __future__ import annotations

import json
from pathlib import Path

STAND_IN_VERSION = "stand-in:untrained"
MARKER_FILE = "STAND_IN_UNTRAINED"
QUANTILES = (0.01, 0.05, *(round(0.05 * k, 2) for k in range(2, 19)), 0.95, 0.99)


def _config() -> object:
    from chronos.chronos2.config import Chronos2CoreConfig

    return Chronos2CoreConfig(
        d_model=64,
        d_kv=16,
        d_ff=128,
        num_layers=3,
        num_heads=4,
        vocab_size=2,
        pad_token_id=0,
        architectures=["Chronos2Model"],
        chronos_pipeline_class="Chronos2Pipeline",
        reg_token_id=1,
        chronos_config={
            "context_length": 8192,
            "input_patch_size": 16,
            "output_patch_size": 16,
            "input_patch_stride": 16,
            "quantiles": list(QUANTILES),
            "use_reg_token": True,
            "use_arcsinh": True,
            "max_output_patches": 64,
            "time_encoding_scale": 8192,
        },
    )


def is_stand_in(directory: Path) -> bool:
    """True when the directory holds a stand-in built by build_stand_in."""
    return (Path(directory) / MARKER_FILE).is_file()


def build_stand_in(directory: Path, seed: int = 0) -> Path:
    """Write the untrained stand-in into `directory` (reused when already there); returns the directory.

    Deterministic: the same seed gives the same weights. The global torch RNG is left as it was."""
    import torch
    from chronos.chronos2 import Chronos2Model

    directory = Path(directory)
    if is_stand_in(directory) and (directory / "config.json").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Chronos2Model(_config())
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar in the one-line notice's neighbourhood
    try:
        model.save_pretrained(directory)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
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
