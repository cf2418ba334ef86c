"""Pure, vectorised day profiles for the simulated site: ambient temperature, PV, shop load, LFP OCV.

Every function takes the UTC day index (days since 1970-01-01) and/or a seeded numpy Generator and returns
per-second arrays for that day (86 400 values). No state, no I/O.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

DAY_S = 86_400
MINUTES = 1_440

# LFP open-circuit voltage: flat plateau ~3.25-3.34 V with knees at both ends (cell SoC 0..1 -> volts).
OCV_SOC = np.array([0.0, 0.02, 0.05, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 0.95, 0.98, 0.995, 1.0])
OCV_V = np.array([2.50, 2.90, 3.10, 3.20, 3.25, 3.27, 3.285, 3.292, 3.30, 3.31, 3.328, 3.34, 3.36, 3.42, 3.50, 3.60])


def ocv_v(soc: np.ndarray | float) -> np.ndarray:
    """LFP cell open-circuit voltage for a state of charge in 0..1 (clipped)."""
    return np.interp(np.clip(soc, 0.0, 1.0), OCV_SOC, OCV_V)


def day_date(day: int) -> dt.date:
    """The UTC calendar date of a day index."""
    return dt.date(1970, 1, 1) + dt.timedelta(days=day)


def _day_of_year(day: int) -> int:
    return day_date(day).timetuple().tm_yday


def ambient_c(day: int) -> np.ndarray:
    """Ambient temperature in the battery room: seasonal level plus a daily cycle (min ~03:00 UTC)."""
    secs = np.arange(DAY_S, dtype=np.float64)
    seasonal = 16.0 + 6.0 * np.cos(2 * np.pi * (_day_of_year(day) - 200) / 365.0)
    daily = 3.0 * np.sin(2 * np.pi * (secs / DAY_S - 0.375))
    return np.asarray(seasonal + daily)


def season(day: int) -> float:
    """+1 at midsummer, -1 at midwinter."""
    return float(np.cos(2 * np.pi * (_day_of_year(day) - 172) / 365.0))


def clear_sky_w(day: int, peak_w: float = 9000.0) -> np.ndarray:
    """Clear-sky PV power: a sine-shaped day around 12:00 UTC whose length follows the season."""
    secs = np.arange(DAY_S, dtype=np.float64)
    season = np.cos(2 * np.pi * (_day_of_year(day) - 172) / 365.0)  # +1 midsummer, -1 midwinter
    day_len_s = (12.0 + 4.0 * season) * 3600.0
    sunrise_s = 12 * 3600.0 - day_len_s / 2
    phase = np.clip((secs - sunrise_s) / day_len_s, 0.0, 1.0)
    elevation = np.sin(np.pi * phase)
    return np.asarray(peak_w * (0.65 + 0.35 * season) * elevation**1.3)


def cloud_factor(rng: np.random.Generator) -> np.ndarray:
    """Per-second transmission 0.15..1: a day-level cloudiness with passing clouds (smoothed noise)."""
    cloudiness = float(rng.beta(0.9, 1.3))
    noise = rng.normal(0.0, 1.0, MINUTES + 1)
    smooth = np.empty_like(noise)
    level = 0.0
    for i, n in enumerate(noise):  # AR(1) at one-minute steps: clouds pass over minutes
        level = 0.9 * level + 0.45 * n
        smooth[i] = level
    cover = np.clip(cloudiness + 0.35 * smooth, 0.0, 1.0)
    minute_factor = 1.0 - 0.85 * cover
    return np.interp(np.arange(DAY_S) / 60.0, np.arange(MINUTES + 1), minute_factor)


def _business_hours(day: int) -> tuple[float, float] | None:
    weekday = day_date(day).weekday()  # Monday = 0
    if weekday < 5:
        return 7 * 3600.0, 17 * 3600.0
    if weekday == 5:
        return 8 * 3600.0, 12 * 3600.0
    return None


def shop_load_w(day: int, rng: np.random.Generator) -> np.ndarray:
    """Shop AC load: night base with a fridge cycle, business hours, machine start-up spikes."""
    secs = np.arange(DAY_S, dtype=np.float64)
    load = 160.0 + 90.0 * ((secs % 2400.0) < 900.0)  # fridge: 15 min on every 40 min
    load += rng.normal(0.0, 8.0, DAY_S)
    hours = _business_hours(day)
    if hours is None:
        return np.clip(load, 0.0, None)
    open_s, close_s = hours
    is_open = (secs >= open_s) & (secs < close_s)
    wander = np.interp(secs / 300.0, np.arange(DAY_S // 300 + 1), rng.normal(0.0, 120.0, DAY_S // 300 + 1))
    load += is_open * (850.0 + wander)
    starts = rng.uniform(open_s, close_s - 60.0, rng.poisson(7.0 * (close_s - open_s) / 3600.0))
    for start in starts.astype(np.int64):
        run_s = int(rng.uniform(60, 900))
        run_w = rng.uniform(700.0, 2200.0)
        inrush_w = rng.uniform(2500.0, 5500.0)
        end = min(int(start) + run_s, DAY_S)
        t = np.arange(end - start, dtype=np.float64)
        load[start:end] += run_w + inrush_w * np.exp(-t / 2.5)  # start-up spike decaying over seconds
    return np.clip(load, 0.0, None)
