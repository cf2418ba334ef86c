"""The promotion rule, as a pure function: better overall, and no regime materially worse.

A regime blocks the promotion only when all four hold:
- it had at least `min_regime_windows` gate windows (fewer say little about that regime; they still
  count in the overall MAE);
- the candidate is worse there beyond noise: the lower end of the 95 % window-bootstrap interval of the
  paired MAE difference (candidate - incumbent, `worse_low_w`) is above zero. A handful of gate windows
  per regime are noisy; a candidate is refused on evidence of harm, not on a draw of the windows;
- the candidate's MAE there is worse than the incumbent's by more than `margin` (relative); and
- the worsening in watts is beyond the negligible floor: on quiet windows the quiet threshold (the mean
  |power| below which the site counts the battery as parked: an error below it leaves a parked forecast
  parked), elsewhere `margin` x the incumbent's overall MAE. Persistence's MAE on a parked battery is a
  few watts, so any model that is not flat is "worse by 300 %" there, by watts that do not matter beside
  hundreds on cycling windows; that must not keep a model that is better where the battery works out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from forecaster.metrics import ALL
from forecaster.regimes import QUIET


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, and why (one line per reason)."""

    promote: bool
    reasons: tuple[str, ...]


def decide(
    candidate_mae: Mapping[str, float],
    incumbent_mae: Mapping[str, float],
    margin: float,
    *,
    windows: Mapping[str, int],
    min_regime_windows: int,
    quiet_threshold_w: float,
    worse_low_w: Mapping[str, float],
) -> GateDecision:
    """Compare MAE per regime (key 'all' = overall); `windows` = gate windows per regime, `worse_low_w` = the
    lower 95 % bound of candidate - incumbent MAE per regime. Promote only when the candidate's overall MAE is
    lower and no regime present in both is materially worse (module doc)."""
    cand = candidate_mae.get(ALL, math.nan)
    inc = incumbent_mae.get(ALL, math.nan)
    if not (math.isfinite(cand) and math.isfinite(inc)):
        return GateDecision(False, ("no overall score to compare (too little held-out data)",))
    reasons = []
    if cand >= inc:
        reasons.append(f"overall MAE {cand:.1f} W is not better than {inc:.1f} W")
    notes = []
    for regime in sorted(set(candidate_mae) & set(incumbent_mae) - {ALL}):
        c, i = candidate_mae[regime], incumbent_mae[regime]
        if not (math.isfinite(c) and math.isfinite(i) and c > i * (1.0 + margin) + 1e-9):
            continue
        n = int(windows.get(regime, 0))
        negligible_w = quiet_threshold_w if regime == QUIET else margin * inc
        floor = "the quiet threshold" if regime == QUIET else f"{margin:.0%} of the overall MAE"
        low = worse_low_w.get(regime, math.nan)
        if n < min_regime_windows:
            notes.append(f"{regime} worse ({c:.1f} W vs {i:.1f} W) but only {n} windows (< {min_regime_windows})")
        elif not low > 0:
            notes.append(f"{regime} worse ({c:.1f} W vs {i:.1f} W) within noise (95 % interval from {low:+.1f} W)")
        elif c - i <= negligible_w + 1e-9:
            notes.append(f"{regime} worse by {c - i:.1f} W, negligible (<= {negligible_w:.1f} W, {floor})")
        else:
            reasons.append(
                f"{regime}: MAE {c:.1f} W is worse than {i:.1f} W beyond noise (95 % interval from {low:+.1f} W),"
                f" by more than {margin:.0%} and by {c - i:.1f} W (> {negligible_w:.1f} W, {floor})"
            )
    if reasons:
        return GateDecision(False, tuple(reasons))
    verdict = f"overall MAE {cand:.1f} W < {inc:.1f} W and no regime materially worse"
    return GateDecision(True, (verdict, *notes))
