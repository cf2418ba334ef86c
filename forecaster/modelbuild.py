"""Build a random-weight Chronos-2 offline from an architecture config (no hub, no download).

Used for the mini Chronos-2's initial weights (forecaster/mini/train.py), the tests' tiny model and the benchmarks'
full-size model. The `chronos_config` mirrors the released amazon/chronos-2 checkpoint's config.json:
context 8192, patch 16, REG token, arcsinh, 64 output patches; `architectures` and
`chronos_pipeline_class` make `BaseChronosPipeline.from_pretrained(dir)` dispatch to Chronos-2.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The 21 quantile levels of amazon/chronos-2: 0.01, 0.05, 0.10 ... 0.95 (step 0.05), 0.99.
CHRONOS2_QUANTILES: tuple[float, ...] = (0.01, 0.05, *(round(0.05 * k, 2) for k in range(2, 19)), 0.95, 0.99)
# The released amazon/chronos-2 architecture (119.5 M parameters).
FULL_SIZE = {"d_model": 768, "d_kv": 64, "d_ff": 3072, "num_layers": 12, "num_heads": 12}
TINY_SIZE = {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4}


def chronos2_config(size: dict[str, int], quantiles: Sequence[float] = CHRONOS2_QUANTILES) -> Any:
    """A Chronos2CoreConfig of the given size (d_model, d_kv, d_ff, num_layers, num_heads)."""
    from chronos.chronos2.config import Chronos2CoreConfig

    return Chronos2CoreConfig(
        **size,
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
            "quantiles": list(quantiles),
            "use_reg_token": True,
            "use_arcsinh": True,
            "max_output_patches": 64,
            "time_encoding_scale": 8192,
        },
    )


def save_random_chronos2(
    directory: Path, size: dict[str, int], seed: int = 0, quantiles: Sequence[float] = CHRONOS2_QUANTILES
) -> int:
    """Save a random-weight Chronos-2 into `directory` (deterministic for the seed; the global torch RNG is
    left as it was). Returns the parameter count."""
    import torch
    from chronos.chronos2 import Chronos2Model
    from transformers.utils import logging as hf_logging

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Chronos2Model(chronos2_config(size, quantiles))
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(directory)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return sum(p.numel() for p in model.parameters())
