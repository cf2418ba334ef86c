"""The promotion rule, as a pure function: better overall, and no regime worse by more than a margin."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from forecaster.metrics import ALL


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, and why (one line per reason)."""

    promote: bool
    reasons: tuple[str, ...]


def decide(candidate_mae: Mapping[str, float], incumbent_mae: Mapping[str, float], margin: float) -> GateDecision:
    """Compare MAE per regime (key 'all' = overall). Promote only when the candidate's overall MAE is lower
    and no regime present in both is worse by more than `margin` (relative)."""
    cand = candidate_mae.get(ALL, math.nan)
    inc = incumbent_mae.get(ALL, math.nan)
    if not (math.isfinite(cand) and math.isfinite(inc)):
        return GateDecision(False, ("no overall score to compare (too little held-out data)",))
    reasons = []
    if cand >= inc:
        reasons.append(f"overall MAE {cand:.1f} W is not better than {inc:.1f} W")
    for regime in sorted(set(candidate_mae) & set(incumbent_mae) - {ALL}):
        c, i = candidate_mae[regime], incumbent_mae[regime]
        if math.isfinite(c) and math.isfinite(i) and c > i * (1.0 + margin) + 1e-9:
            reasons.append(f"{regime}: MAE {c:.1f} W is worse than {i:.1f} W by more than {margin:.0%}")
    if reasons:
        return GateDecision(False, tuple(reasons))
    return GateDecision(True, (f"overall MAE {cand:.1f} W < {inc:.1f} W and no regime worse by > {margin:.0%}",))
