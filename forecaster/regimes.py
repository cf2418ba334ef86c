"""Pure regime labels: quiet / cycling from mean |battery power|, transition when it changes."""

from __future__ import annotations

import numpy as np

QUIET = "quiet"
CYCLING = "cycling"
TRANSITION = "transition"
UNKNOWN = "unknown"
REGIMES = (QUIET, CYCLING, TRANSITION)


def regime_of(power_w: np.ndarray, threshold_w: float) -> str:
    """quiet if the mean |power| of the finite values is below the threshold, cycling otherwise."""
    values = np.asarray(power_w, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return UNKNOWN
    return QUIET if float(np.mean(np.abs(values))) < threshold_w else CYCLING


def horizon_regime(actual_w: np.ndarray, threshold_w: float, segments: int = 4) -> str:
    """Label a horizon from its actuals: quiet/cycling, or transition when its segments disagree."""
    values = np.asarray(actual_w, dtype=float)
    parts = [p for p in np.array_split(values, min(segments, max(1, values.size))) if p.size]
    labels = {regime_of(p, threshold_w) for p in parts} - {UNKNOWN}
    if not labels:
        return UNKNOWN
    if len(labels) > 1:
        return TRANSITION
    return labels.pop()


def issue_regime(context_w: np.ndarray, threshold_w: float, tail_steps: int) -> str:
    """Regime at issue time: the label of the last `tail_steps` of the context."""
    values = np.asarray(context_w, dtype=float)
    return regime_of(values[-tail_steps:], threshold_w)
