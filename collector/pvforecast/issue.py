"""One issued PV forecast (the small typed record a provider hands on) and its rows in `pv_forecast` (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from bess_common.sample import Sample
from bess_common.schema import PV_FORECAST


@dataclass(frozen=True, slots=True)
class PvPeriod:
    """Mean forecast PV power over [target_ns, target_ns + period_s)."""

    target_ns: int
    period_s: int
    power_w: float


@dataclass(frozen=True, slots=True)
class PvForecastIssue:
    """A forecast as one provider issued it: `issued_ns` is when it was received (UTC ns)."""

    provider: str
    issued_ns: int
    periods: tuple[PvPeriod, ...]


def issue_samples(issue: PvForecastIssue, site: str) -> list[Sample]:
    """The issue's rows: one per period, all stamped with the issue time, tag step = index in the issue."""
    return [
        Sample(
            PV_FORECAST,
            {"site": site, "provider": issue.provider, "step": str(step)},
            {"target_ns": int(p.target_ns), "period_s": int(p.period_s), "power_w": float(p.power_w)},
            issue.issued_ns,
        )
        for step, p in enumerate(issue.periods)
    ]
