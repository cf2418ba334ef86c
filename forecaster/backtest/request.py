"""What a backtest run is asked to do besides its plan (run id, output folder, seed, fine-tune options)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Request:
    """What to run besides the plan."""

    run_id: str
    out_dir: Path
    seed: int = 0
    finetune: bool = True
    finetune_steps: int | None = None
    dataset: str = ""
    base_model: str = ""
    stand_in: bool = False
    hold_last_steps: int = 0
    started_s: float | None = None  # time.monotonic() when the command started (the one wall time)
