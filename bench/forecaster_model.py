"""Random-initialised Chronos-2 checkpoints for the benchmark (never downloaded): the real amazon/chronos-2
size (119.5M parameters) or a small one for --quick, plus a LoRA adapter with Chronos-2's default targets.
Weights do not change the cost, so random ones measure the same thing."""

from __future__ import annotations

from pathlib import Path

from forecaster.modelbuild import FULL_SIZE, save_random_chronos2

REAL = FULL_SIZE  # amazon/chronos-2: 119.5M parameters
SMALL = {"d_model": 128, "d_kv": 32, "d_ff": 512, "num_layers": 2, "num_heads": 4}  # --quick only
LORA_TARGETS = [
    "self_attention.q",
    "self_attention.v",
    "self_attention.k",
    "self_attention.o",
    "output_patch_embedding.output_layer",
]


def build_model(directory: Path, size: dict[str, int]) -> int:
    """Save a random Chronos-2 of `size` into `directory` (forecaster.modelbuild); its parameter count."""
    return save_random_chronos2(directory, size)


def build_adapter(base_dir: Path, adapter_dir: Path) -> int:
    """Save a LoRA adapter (r=8, alpha=16, Chronos-2's default targets) for the base; its trainable count."""
    import torch
    from chronos.chronos2 import Chronos2Model
    from peft import LoraConfig, get_peft_model

    model = Chronos2Model.from_pretrained(base_dir)
    peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=LORA_TARGETS))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:  # non-zero B: the adapter really changes the output
                param.normal_(0.0, 0.01)
    peft.save_pretrained(str(adapter_dir))
    return sum(p.numel() for n, p in peft.named_parameters() if "lora_" in n)
