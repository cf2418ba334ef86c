"""Synthetic training series for the mini Chronos-2: pure numpy, seeded, never real or evaluation data.

Two families, each a Chronos-2 task dict (`target`, `past_covariates`, `future_covariates`):

- `bess_task`: a battery site on a regular grid (1, 5 or 15 min). PV (daylight bell x clouds), a load
  (base + daily/weekly shape + appliance spikes + step changes) and a battery whose power follows a
  regime that switches between parked, self-consumption (battery = PV − load within its power limit,
  stopped at SoC limits) and a daily schedule (fixed charge/discharge blocks). SoC integrates the power;
  voltage follows SoC and current. The covariates drive the target: PV and load set the self-consumption
  power, time of day sets the schedule and the daylight, so they are learnable.
- `generic_task`: trend + daily/weekly or arbitrary seasonality + AR noise + step changes + sparse spikes
  + on/off regime switches, with 0-3 driver covariates (past-only leading indicators or known-future
  drivers) that enter the target through a lag and a gain.

Sign convention, scale and resolution are randomised so the model learns shapes, not one site.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DAY_S = 86_400
WEEK_S = 7 * DAY_S
STEP_CHOICES_S = (60, 60, 60, 300, 900)
TIME_KEYS = ("tod_sin", "tod_cos", "dow_sin", "dow_cos")
BESS_PAST_KEYS = ("battery_voltage_v", "battery_soc_pct", "pv_power_w", "load_power_w")
PARK, SELF, SCHEDULE = 0, 1, 2


def _ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> np.ndarray:
    """AR(1) noise."""
    shocks = rng.normal(0.0, sigma, n).tolist()
    out = np.empty(n)
    level = 0.0
    for i, e in enumerate(shocks):
        level = phi * level + e
        out[i] = level
    return out


def _time_features(t_s: np.ndarray) -> dict[str, np.ndarray]:
    tod = 2 * np.pi * (t_s % DAY_S) / DAY_S
    dow = 2 * np.pi * ((t_s + 3 * DAY_S) % WEEK_S) / WEEK_S
    return {"tod_sin": np.sin(tod), "tod_cos": np.cos(tod), "dow_sin": np.sin(dow), "dow_cos": np.cos(dow)}


def _steps(rng: np.random.Generator, n: int, rate: float, scale: float) -> np.ndarray:
    """Piecewise-constant level with Poisson step changes (rate per step)."""
    jumps = (rng.uniform(size=n) < rate) * rng.normal(0.0, scale, n)
    return np.cumsum(jumps)


def _spikes(rng: np.random.Generator, n: int, rate: float, height: float, max_len: int) -> np.ndarray:
    """Sparse rectangular spikes (appliances, faults)."""
    out = np.zeros(n)
    for start in np.flatnonzero(rng.uniform(size=n) < rate):
        out[start : start + int(rng.integers(1, max_len + 1))] += height * rng.uniform(0.3, 1.0)
    return out


def _regime_blocks(rng: np.random.Generator, n: int, step_s: int, t_s: np.ndarray) -> np.ndarray:
    """Per-step regime code: blocks of hours to days, parked / self-consumption / schedule."""
    weights = rng.dirichlet([1.0, 1.5, 1.0])
    codes = np.empty(n, dtype=np.int8)
    i = 0
    while i < n:
        length_s = float(rng.choice([3, 6, 12, 24, 48])) * 3600.0 * rng.uniform(0.5, 1.5)
        # blocks tend to start at a full hour, as operators switch modes
        length = max(1, int(length_s / step_s))
        codes[i : i + length] = rng.choice(3, p=weights)
        i += length
    if rng.uniform() < 0.3:  # some sites park every night
        hour = (t_s % DAY_S) / 3600.0
        codes[(hour < rng.uniform(0, 5)) & (codes == SELF)] = PARK
    return codes


def _pv_w(rng: np.random.Generator, t_s: np.ndarray, n_days: int) -> np.ndarray:
    peak = float(rng.choice([0.0, rng.uniform(500.0, 12_000.0)], p=[0.1, 0.9]))
    noon_h = rng.uniform(11.0, 14.0)
    length_h = rng.uniform(8.0, 16.0)
    hour = (t_s % DAY_S) / 3600.0
    phase = np.clip((hour - noon_h + length_h / 2) / length_h, 0.0, 1.0)
    day = (t_s // DAY_S).astype(int)
    day -= day.min()
    cloud_day = rng.beta(0.9, 1.3, n_days + 1)
    clouds = np.clip(cloud_day[day] + 0.3 * _ar1(rng, len(t_s), 0.9, 0.4), 0.0, 1.0)
    return np.asarray(peak * np.sin(np.pi * phase) ** 1.3 * (1.0 - 0.85 * clouds))


def _load_w(rng: np.random.Generator, t_s: np.ndarray, step_s: int) -> np.ndarray:
    n = len(t_s)
    base = rng.uniform(80.0, 2000.0)
    hour = (t_s % DAY_S) / 3600.0
    morning = rng.uniform(0, 1.5) * np.exp(-0.5 * ((hour - rng.uniform(6, 9)) / rng.uniform(0.5, 2)) ** 2)
    evening = rng.uniform(0, 2.5) * np.exp(-0.5 * ((hour - rng.uniform(17, 21)) / rng.uniform(0.7, 2.5)) ** 2)
    weekday = ((t_s // DAY_S + 3) % 7) < 5
    week = np.where(weekday, 1.0, rng.uniform(0.5, 1.5))
    level = 1.0 + _steps(rng, n, 2.0 / max(1, DAY_S // step_s * 3), 0.3)
    spikes = _spikes(rng, n, 0.01 * step_s / 60 / 10, rng.uniform(500, 3000) / base, max(1, 1800 // step_s))
    load = base * np.clip(level, 0.2, None) * week * (1.0 + morning + evening + spikes)
    return np.asarray(np.clip(load * (1.0 + _ar1(rng, n, 0.8, 0.05)), 0.0, None))


def _battery(
    rng: np.random.Generator, codes: np.ndarray, surplus_w: np.ndarray, t_s: np.ndarray, step_s: int
) -> tuple[np.ndarray, np.ndarray]:
    """Battery power (+ = charging) and SoC (0..1), the SoC limits applied step by step."""
    n = len(codes)
    pmax = rng.uniform(800.0, 10_000.0)
    capacity_wh = pmax * rng.uniform(1.0, 4.0)
    hour = (t_s % DAY_S) / 3600.0
    charge_at, discharge_at = rng.uniform(0, 6), rng.uniform(16, 21)
    sched = np.where((hour >= charge_at) & (hour < charge_at + 3), 1.0, 0.0)
    sched -= np.where((hour >= discharge_at) & (hour < discharge_at + 3), 1.0, 0.0)
    wanted = np.where(
        codes == SELF,
        np.clip(surplus_w, -pmax, pmax),
        np.where(codes == SCHEDULE, sched * pmax * rng.uniform(0.3, 1.0), 0.0),
    )
    lo, hi = rng.uniform(0.05, 0.25), rng.uniform(0.85, 1.0)
    soc = np.empty(n)
    power = np.empty(n)
    s = rng.uniform(lo, hi)
    dt_h = step_s / 3600.0
    for i in range(n):  # the SoC limits need the running state
        p = float(wanted[i])
        if (p > 0 and s >= hi) or (p < 0 and s <= lo):
            p = 0.0
        power[i] = p
        s = min(1.0, max(0.0, s + p * dt_h / capacity_wh))
        soc[i] = s
    return power, soc


def bess_task(rng: np.random.Generator, length: int) -> dict[str, Any]:
    """One synthetic battery site as a Chronos-2 task (target battery power, covariates that drive it)."""
    step_s = int(rng.choice(STEP_CHOICES_S))
    start_s = int(rng.integers(0, 4 * 365)) * DAY_S + int(rng.integers(0, DAY_S // step_s)) * step_s
    t_s = start_s + step_s * np.arange(length, dtype=np.int64)
    n_days = int(length * step_s // DAY_S) + 1
    pv = _pv_w(rng, t_s, n_days)
    load = _load_w(rng, t_s, step_s)
    codes = _regime_blocks(rng, length, step_s, t_s)
    power, soc = _battery(rng, codes, pv - load, t_s, step_s)
    nominal_v = float(rng.choice([12.8, 25.6, 51.2, 51.2, 409.6]))
    current = power / nominal_v
    voltage = (
        nominal_v * (0.94 + 0.1 * soc + 0.03 * np.clip(soc - 0.9, 0, None) * 10) + current * 0.002 * nominal_v / 50
    )
    noise = rng.uniform(0.002, 0.03) * np.max(np.abs(power)) + 1.0
    target = power + rng.normal(0.0, noise, length) * (codes != PARK) + rng.normal(0.0, 3.0, length)
    if rng.uniform() < 0.5:
        target = -target  # some sources report discharge as positive
    past: dict[str, np.ndarray] = {
        "battery_voltage_v": voltage + rng.normal(0.0, 0.002 * nominal_v, length),
        "battery_soc_pct": np.round(100.0 * soc, 0 if rng.uniform() < 0.5 else 1),
        "pv_power_w": pv,
        "load_power_w": load,
    }
    keep = [k for k in BESS_PAST_KEYS if rng.uniform() < 0.85]
    past = {k: past[k] for k in keep}
    known = list(TIME_KEYS) if rng.uniform() < 0.8 else []
    past.update({k: v for k, v in _time_features(t_s).items() if k in known})
    _drop_gaps(rng, target, past)
    return {"target": target, "past_covariates": past, "future_covariates": {k: None for k in known}}


def _driver(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.integers(4)
    if kind == 0:  # smooth random walk
        return _ar1(rng, n, 0.99, 0.1)
    if kind == 1:  # square wave (on/off schedule)
        period = int(rng.integers(12, 400))
        return ((np.arange(n) + int(rng.integers(period))) % period < period * rng.uniform(0.2, 0.8)).astype(float)
    if kind == 2:  # sinusoid with a random period
        return np.sin(2 * np.pi * np.arange(n) / rng.uniform(10, 800) + rng.uniform(0, 6.3))
    return _spikes(rng, n, 0.01, 1.0, 30) + _ar1(rng, n, 0.5, 0.05)


def generic_task(rng: np.random.Generator, length: int) -> dict[str, Any]:
    """A generic series with trend, seasonality, noise, steps, spikes, regime switches and drivers."""
    n = length
    t = np.arange(n, dtype=float)
    y = rng.normal(0, 1) * t / n * rng.choice([0.0, 1.0, 3.0])
    on = np.ones(n)
    if rng.uniform() < 0.4:  # on/off regime: seasonal part present only while "on"
        on = (np.cumsum(rng.uniform(size=n) < 1.0 / rng.uniform(50, 500)) % 2 == 0).astype(float)
    for _ in range(int(rng.integers(0, 3))):
        period = float(rng.choice([24, 48, 96, 144, 168, 288, 672, 1440, rng.uniform(5, 500)]))
        harmonics = rng.normal(0, 1, (3, 2)) / np.arange(1, 4)[:, None]
        for k, (a, b) in enumerate(harmonics, start=1):
            y += on * (a * np.sin(2 * np.pi * k * t / period) + b * np.cos(2 * np.pi * k * t / period))
    y += _ar1(rng, n, float(rng.uniform(0, 0.98)), float(rng.uniform(0.01, 0.5)))
    y += _steps(rng, n, float(rng.choice([0.0, 0.002, 0.01])), 1.0)
    y += _spikes(rng, n, float(rng.choice([0.0, 0.003])), float(rng.normal(0, 4)), 5)
    past: dict[str, np.ndarray] = {}
    known: list[str] = []
    for j in range(int(rng.choice([0, 1, 1, 2, 3]))):
        x = _driver(rng, n)
        gain = rng.normal(0, 2)
        name = f"x{j}"
        if rng.uniform() < 0.5:  # known-future driver, acts now
            y += gain * x
            known.append(name)
        else:  # past-only leading indicator, acts after a lag
            lag = int(rng.integers(1, 65))
            y[lag:] += gain * x[:-lag]
        past[name] = x
    y = y * 10 ** rng.uniform(-1, 4) + rng.normal(0, 1) * 10 ** rng.uniform(0, 3)
    _drop_gaps(rng, y, past)
    return {"target": y, "past_covariates": past, "future_covariates": {k: None for k in known}}


def _drop_gaps(rng: np.random.Generator, target: np.ndarray, past: dict[str, np.ndarray]) -> None:
    """Occasional NaN gaps (outages) in the target and the measured covariates, in place."""
    if rng.uniform() < 0.2:
        n = len(target)
        start = int(rng.integers(0, n))
        stop = start + int(rng.integers(1, max(2, n // 10)))
        target[start:stop] = np.nan
        for key, values in past.items():
            if key not in TIME_KEYS and rng.uniform() < 0.7:
                values[start:stop] = np.nan


def make_tasks(seed: int, count: int, min_length: int, max_length: int, bess_share: float = 0.6) -> list[dict]:
    """`count` tasks (a mix of both families) of random lengths in [min_length, max_length]."""
    rng = np.random.default_rng(seed)
    tasks = []
    for _ in range(count):
        length = int(rng.integers(min_length, max_length + 1))
        family = bess_task if rng.uniform() < bess_share else generic_task
        tasks.append(family(rng, length))
    return tasks
