"""A small site whose forced charges follow a day-ahead plan, written to InfluxDB exactly as the `gx_plan` and
`pv_forecast` measurements are documented (docs/schema.md): telemetry, plan snapshots, PV forecast issues."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bess_common.influx import InfluxClient
from bess_common.lineproto import to_lines
from bess_common.sample import Sample
from bess_common.schema import GX_PLAN, PV_FORECAST

NS = 1_000_000_000
H_NS = 3600 * NS
DAY_NS = 24 * H_NS
CHARGE_W = 2500.0


@dataclass(frozen=True)
class Snapshot:
    """One plan snapshot: the DESS charge slots (Unix start s, duration s) it schedules at 90 % target."""

    ts_ns: int
    charges: tuple[tuple[int, int], ...]


def day_ahead_plans(start_ns: int, days: int, seed: int) -> list[Snapshot]:
    """A new plan every day at 12:00 UTC for that day and the next, each day with a 2 h charge at a random hour
    (so that only the plan says when it comes); the first one at the start."""
    rng = np.random.default_rng(seed)
    hours = rng.integers(0, 22, days + 2)
    out = []
    for day in range(days + 1):
        issued = start_ns + day * DAY_NS + (12 * H_NS if day else 0)
        slots = [((start_ns + d * DAY_NS + int(hours[d]) * H_NS) // NS, 2 * 3600) for d in (day, day + 1) if d <= days]
        out.append(Snapshot(issued, tuple(slots)))
    return out


def plan_samples(snapshot: Snapshot, site: str = "shop", slots: int = 4) -> list[Sample]:
    """Every configured slot of one snapshot at its timestamp (unused ones too: Start 0), a slot at the minimum
    SoC before each charge, and the settings."""
    rows: list[tuple[int, int, float]] = []
    for start_s, duration_s in snapshot.charges:
        rows += [(start_s - 3600, 3600, 20.0), (start_s, duration_s, 90.0)]  # hold at the minimum, then charge
    rows += [(0, 0, 0.0)] * (slots - len(rows))
    out = [
        Sample(
            GX_PLAN,
            {"site": site, "kind": "dess", "slot": str(i)},
            {
                "start_s": s,
                "duration_s": dur,
                "soc_pct": soc,
                "strategy": 0,
                "allow_grid_feed_in": 0,
                "restrictions": 0,
            },
            snapshot.ts_ns,
        )
        for i, (s, dur, soc) in enumerate(rows)
    ]
    settings = {"dess_mode": 1, "ess_mode": 1, "min_soc_pct": 20.0, "battery_life_state": 10}
    out.append(Sample(GX_PLAN, {"site": site, "kind": "settings", "slot": "all"}, settings, snapshot.ts_ns))  # type: ignore[arg-type]
    return out


def pv_issue_samples(issue_ns: int, powers: np.ndarray, site: str = "shop") -> list[Sample]:
    """One PV forecast issue: hourly periods from the issue's hour on."""
    first = issue_ns - issue_ns % H_NS
    return [
        Sample(
            PV_FORECAST,
            {"site": site, "provider": "simulator", "step": str(i)},
            {"target_ns": first + i * H_NS, "period_s": 3600, "power_w": float(p)},
            issue_ns,
        )
        for i, p in enumerate(powers)
    ]


def pv_shape(ts_ns: np.ndarray) -> np.ndarray:
    hour = (ts_ns // NS % 86400) / 3600.0
    return np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None) * 3000.0


def telemetry_lines(start_ns: int, end_ns: int, plans: list[Snapshot], step_s: int, seed: int) -> list[str]:
    """`system` rows: the battery charges at CHARGE_W in every slot of the plan in force, else follows PV
    surplus a little; noise on top."""
    rng = np.random.default_rng(seed)
    ts = np.arange(start_ns, end_ns, step_s * NS, dtype=np.int64)
    charging = np.zeros(ts.size, dtype=bool)
    for snap in plans:
        for start_s, duration_s in snap.charges:
            charging |= (ts >= start_s * NS) & (ts < (start_s + duration_s) * NS)
    pv = pv_shape(ts)
    power = np.where(charging, CHARGE_W, 0.3 * pv - 300.0) + rng.normal(0, 40, ts.size)
    soc = np.clip(50 + np.cumsum(power) * step_s / 3600 / 100, 5, 100)
    return [
        f"system,site=shop battery_power_w={p:.1f},battery_voltage_v={48 + s / 25:.3f},battery_soc_pct={s:.2f},"
        f"pv_w={v:.1f},load_w=400.0 {t}"
        for t, p, s, v in zip(ts, power, soc, pv, strict=True)
    ]


def write_site(influx: InfluxClient, start_ns: int, days: int, *, step_s: int = 300, seed: int = 0) -> list[Snapshot]:
    """Telemetry, a plan snapshot per day and a PV forecast issue every 3 h over `days` days; the plans."""
    plans = day_ahead_plans(start_ns, days, seed)
    end = start_ns + days * DAY_NS
    lines = telemetry_lines(start_ns, end, plans, step_s, seed)
    lines += to_lines([s for p in plans for s in plan_samples(p)])
    rng = np.random.default_rng(seed + 1)
    for issue in range(start_ns, end, 3 * H_NS):
        periods = issue - issue % H_NS + H_NS * np.arange(24, dtype=np.int64)
        lines += to_lines(pv_issue_samples(issue, pv_shape(periods) * rng.uniform(0.7, 1.3)))
    for i in range(0, len(lines), 5000):
        influx.write(lines[i : i + 5000])
    return plans


def rewrite_after(influx: InfluxClient, cutoff_ns: int, plans: list[Snapshot], seed: int) -> None:
    """Overwrite every plan snapshot and PV issue stamped after the cut-off with other values, and add a new
    snapshot and a new issue one second after it: everything issued after the cut-off changes, including what
    it says about the time before the cut-off (only hindsight could see that)."""
    rng = np.random.default_rng(seed)
    later = [p for p in plans if p.ts_ns > cutoff_ns]
    past = (cutoff_ns // NS - 3600, 3600)  # each revision also restates the hour before the cut-off as a charge
    moved = [Snapshot(p.ts_ns, (past, *((s + 3 * 3600, d) for s, d in p.charges))) for p in later]
    soon = cutoff_ns // NS + 1800  # a charge half an hour into the horizon, announced right after the cut-off
    moved.append(Snapshot(cutoff_ns + NS, (past, (soon, 3600))))
    lines = to_lines([s for p in moved for s in plan_samples(p)])
    issues = [cutoff_ns + NS, *range(cutoff_ns - cutoff_ns % (3 * H_NS) + 3 * H_NS, cutoff_ns + 3 * DAY_NS, 3 * H_NS)]
    for issue in issues:
        lines += to_lines(pv_issue_samples(issue, rng.uniform(0, 5000, 24)))
    influx.write(lines)
