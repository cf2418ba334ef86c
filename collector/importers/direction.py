"""Inferring the direction of an unsigned battery current from the SoC and voltage slopes. Pure.

The Pylontech console logs of 2021 report |current| only. The rule, applied to the whole pack (all modules
sit on one bus, so they charge or discharge together; the mean SoC of six modules also has a finer step
than one module's whole-percent SoC):

1. A row with zero current has no direction to find (0).
2. SoC slope: the mean pack SoC over the `window_s` after the row minus the mean over the `window_s`
   before it. A change of at least `soc_min_pct` decides: rising = charging (+1), falling = discharging.
3. Otherwise the voltage slope, the same way with `voltage_min_v` (charging raises the bus voltage,
   discharging lowers it).
4. Otherwise the last direction decided within `window_s` before, if any; else unknown (None): the
   importer then writes no current or power for that row rather than guess.

Limits: a direction change is smeared over up to one window; a small current that reverses inside a window
(e.g. a few hundred mA of balancing or standby draw) can be mis-signed; at the very top of charge (SoC at
100 % and a flat voltage in CV mode) only rule 4 or "unknown" remains; modules that balance against each
other while the pack idles get the pack's direction. Checked against the 2023 logs, which do carry the
BMS's own Charge/Dischg/Idle status (tests/integration/test_import_pylontech.py).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import accumulate

Direction = int | None  # +1 charging, -1 discharging, 0 no current, None unknown


def _window_mean(prefix: list[float], lo: int, hi: int) -> float | None:
    return (prefix[hi] - prefix[lo]) / (hi - lo) if hi > lo else None


def _slope(prefix: list[float], values: Sequence[float], times: Sequence[float], j: int, window_s: float) -> float:
    """Mean over (t, t+w] minus mean over [t-w, t); a missing side is replaced by the row's own value."""
    t = times[j]
    before = _window_mean(prefix, bisect_left(times, t - window_s), bisect_left(times, t))
    after = _window_mean(prefix, bisect_right(times, t), bisect_right(times, t + window_s))
    return (after if after is not None else values[j]) - (before if before is not None else values[j])


def infer_directions(
    times_s: Sequence[float],
    soc_pct: Sequence[float],
    voltage_v: Sequence[float],
    current_abs_a: Sequence[float],
    *,
    window_s: float = 900.0,
    soc_min_pct: float = 0.1,
    voltage_min_v: float = 0.01,
) -> list[Direction]:
    """Direction per row of a pack series sorted by time (see the module docstring for the rule)."""
    soc_prefix = [0.0, *accumulate(soc_pct)]
    volt_prefix = [0.0, *accumulate(voltage_v)]
    out: list[Direction] = []
    last: tuple[float, int] | None = None  # (time, direction) of the last decided row
    for j, t in enumerate(times_s):
        if current_abs_a[j] == 0:
            out.append(0)
            continue
        decided: Direction = None
        d_soc = _slope(soc_prefix, soc_pct, times_s, j, window_s)
        if abs(d_soc) >= soc_min_pct and d_soc != 0:
            decided = 1 if d_soc > 0 else -1
        else:
            d_volt = _slope(volt_prefix, voltage_v, times_s, j, window_s)
            if abs(d_volt) >= voltage_min_v and d_volt != 0:
                decided = 1 if d_volt > 0 else -1
        if decided is None and last is not None and t - last[0] <= window_s:
            decided = last[1]
        elif decided is not None:
            last = (t, decided)
        out.append(decided)
    return out
