"""Pure regime labels: quiet / cycling from mean |battery power|, transition when it changes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUIET = "quiet"
CYCLING = "cycling"
TRANSITION = "transition"
UNKNOWN = "unknown"
REGIMES = (QUIET, CYCLING, TRANSITION)


P99 = 99.0
FALLBACK_THRESHOLD_W = 100.0  # only when there is no data to derive a threshold from


@dataclass(frozen=True)
class QuietThreshold:
    """The quiet threshold in W and how it was obtained (recorded in manifests, shown in the report)."""

    value_w: float
    how: str

    def manifest(self) -> dict[str, object]:
        """The manifest entry."""
        return {"value_w": self.value_w, "how": self.how}


def quiet_threshold(power_w: np.ndarray, fraction: float, override_w: float | None = None) -> QuietThreshold:
    """The battery's own scale: `fraction` x the 99th percentile of |power| (an absolute override wins).
    A megawatt battery and a home battery get thresholds in proportion to what they do."""
    if override_w is not None:
        return QuietThreshold(float(override_w), "absolute override (forecaster.quiet_threshold_w)")
    values = np.abs(np.asarray(power_w, dtype=float))
    values = values[np.isfinite(values)]
    p99 = float(np.percentile(values, P99)) if values.size else 0.0
    if p99 <= 0:
        return QuietThreshold(FALLBACK_THRESHOLD_W, "fallback: no power data to derive a threshold from")
    value = round(fraction * p99, 3)
    return QuietThreshold(value, f"{fraction:g} x the 99th percentile of |power| ({p99:.6g} W)")


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


def regime_hours(power_w: np.ndarray, step_s: int, block_steps: int, threshold_w: float) -> dict[str, float]:
    """Hours of data in each regime: the series cut in consecutive blocks of `block_steps` (a horizon), each
    labelled like a forecast horizon; only buckets with data count, blocks without data are left out."""
    values = np.asarray(power_w, dtype=float)
    hours = dict.fromkeys(REGIMES, 0.0)
    for lo in range(0, values.size, max(1, block_steps)):
        block = values[lo : lo + block_steps]
        label = horizon_regime(block, threshold_w)
        if label != UNKNOWN:
            hours[label] += float(np.isfinite(block).sum()) * step_s / 3600.0
    return {k: round(v, 3) for k, v in hours.items()}


def shares(hours: dict[str, float]) -> dict[str, float]:
    """Each regime's share of the hours (empty when there are none)."""
    total = sum(hours.values())
    return {k: round(v / total, 4) for k, v in hours.items()} if total > 0 else {}
