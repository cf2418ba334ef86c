"""The simulator's PV forecast: what a weather-driven forecast of its own PV would have said at an issue time.

The actual PV of a day is clear sky x that day's clouds (BessPhysics.pv_w). A forecast issued at time i for
the period starting at t (lead = t - i) sees the clear sky exactly (geometry is known) but the clouds only
blurred: its transmission is the period's actual mean transmission pulled towards the climatological mean
(`CLIMATE_TRANSMISSION`) by a weight that decays with lead, plus an error whose spread grows with lead. The
error has a per-day part shared by the periods of one target day (a misforecast weather system) and a
per-period part; both are drawn from the seed and the issue time, so successive issues differ and converge
on the actual PV as the lead shrinks, but no issue is the actual future: even at lead 0 the forecast is a
period mean plus noise. Pure and deterministic (same seed and issue time, same numbers).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from bess_common.sample import Sample
from collector.pvforecast.issue import PvForecastIssue, PvPeriod, issue_samples
from collector.simulator.physics import BessPhysics
from collector.simulator.profiles import DAY_S, clear_sky_w

NS = 1_000_000_000
PROVIDER = "simulator"
CLIMATE_TRANSMISSION = 0.65  # 1 - 0.85 x E[day cloudiness] of profiles.cloud_factor (Beta(0.9, 1.3) mean 0.41)
SKILL_DECAY_H = 30.0  # lead at which the forecast keeps 1/e of the actual clouds' departure from climate
SIGMA_MIN = 0.04  # error spread (transmission units) at lead 0
SIGMA_GROWTH = 0.14  # extra spread reached at long leads
SIGMA_GROWTH_H = 24.0
MIN_TRANSMISSION = 0.15  # profiles.cloud_factor's floor
PERIODS_S = (900, 1800, 3600)


class SimPvForecast:
    """Forecast issues of one simulated site's PV (thread-safe; caches the most recent days)."""

    def __init__(self, physics: BessPhysics, cache_days: int = 4) -> None:
        self._physics = physics
        self._cache: OrderedDict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_days = cache_days
        self._lock = threading.Lock()

    def actual_means_w(self, day: int, period_s: int) -> tuple[np.ndarray, np.ndarray]:
        """(clear-sky mean, actual mean) PV power of each period of UTC day `day`."""
        key = (day, period_s)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        clear = clear_sky_w(day).reshape(-1, period_s).mean(axis=1)
        actual = self._physics.pv_w(day).reshape(-1, period_s).mean(axis=1)
        with self._lock:
            self._cache[key] = (clear, actual)
            while len(self._cache) > self._cache_days:
                self._cache.popitem(last=False)
        return clear, actual

    def issue(self, issued_ns: int, horizon_s: int = 48 * 3600, period_s: int = 3600) -> PvForecastIssue:
        """The forecast issued at `issued_ns`: periods from the one containing the issue time to `horizon_s` on."""
        if period_s not in PERIODS_S:
            raise ValueError(f"period_s must be one of {PERIODS_S}")
        if horizon_s < period_s:
            raise ValueError("horizon_s must cover at least one period")
        issued_s = issued_ns // NS
        first_s = issued_s // period_s * period_s
        count = -(-(issued_s + horizon_s - first_s) // period_s)
        starts = first_s + period_s * np.arange(count)
        clear, actual = self._means(starts, period_s)
        lead_h = np.maximum(starts + period_s / 2 - issued_s, 0.0) / 3600.0
        weight = np.exp(-lead_h / SKILL_DECAY_H)
        sigma = SIGMA_MIN + SIGMA_GROWTH * (1.0 - np.exp(-lead_h / SIGMA_GROWTH_H))
        rng = np.random.default_rng([self._physics.seed & 0xFFFFFFFF, 0xF0CA, issued_s])
        days = (starts // DAY_S) - starts[0] // DAY_S
        z_day = rng.normal(0.0, 1.0, int(days[-1]) + 1)[days]
        z_period = rng.normal(0.0, 1.0, count)
        error = sigma * (0.8 * z_day + 0.6 * z_period)
        with np.errstate(divide="ignore", invalid="ignore"):
            transmission = np.where(clear > 1e-6, actual / clear, CLIMATE_TRANSMISSION)
        forecast_t = CLIMATE_TRANSMISSION + weight * (transmission - CLIMATE_TRANSMISSION) + error
        power = clear * np.clip(forecast_t, MIN_TRANSMISSION, 1.0)
        periods = tuple(
            PvPeriod(int(s) * NS, period_s, round(float(p), 1))
            for s, p in zip(starts.tolist(), power.tolist(), strict=True)
        )
        return PvForecastIssue(PROVIDER, issued_ns, periods)

    def _means(self, starts: np.ndarray, period_s: int) -> tuple[np.ndarray, np.ndarray]:
        per_day = DAY_S // period_s
        clear = np.empty(len(starts))
        actual = np.empty(len(starts))
        for n, start in enumerate(starts.tolist()):
            day, idx = divmod(int(start), DAY_S)
            c, a = self.actual_means_w(day, period_s)
            clear[n], actual[n] = c[idx // period_s % per_day], a[idx // period_s % per_day]
        return clear, actual


def pv_forecast_samples(
    physics: BessPhysics,
    start_ns: int,
    end_ns: int,
    every_s: int,
    *,
    horizon_s: int = 48 * 3600,
    period_s: int = 3600,
    site: str = "shop",
) -> Iterator[Sample]:
    """`pv_forecast` rows of the issues at every multiple of `every_s` in [start_ns, end_ns), in time order."""
    if every_s < 60:
        raise ValueError("every_s must be >= 60")
    forecaster = SimPvForecast(physics)
    first_s = -(-start_ns // (every_s * NS)) * every_s  # integer ceil: exact at any ns
    issue_s = first_s
    while issue_s * NS < end_ns:
        yield from issue_samples(forecaster.issue(issue_s * NS, horizon_s, period_s), site)
        issue_s += every_s
