"""bench.drivers_evidence picks cut-offs by the plan known at each (never a later one) and subsets run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.drivers_evidence import charge_cutoffs, subset_run
from forecaster import drivers as d

NS = 1_000_000_000
H = 3600 * NS
T0 = 1_767_398_400 * NS  # 2026-01-03T00:00:00Z


def test_a_cutoff_counts_only_when_the_plan_known_at_it_schedules_a_charge_in_its_horizon() -> None:
    early = d.PlanSnapshot(T0, dess=(d.DessSlot(T0 // NS + 8 * 3600, 3600, 90.0),), dess_mode=1)
    late = d.PlanSnapshot(T0 + 3 * H, dess=(d.DessSlot(T0 // NS + 5 * 3600, 3600, 90.0),), dess_mode=1)  # moved
    drivers = d.Drivers((early, late))
    cutoffs = [T0 + h * H for h in range(12)]
    found = charge_cutoffs(drivers, cutoffs, 60 * NS, 241)  # 4 h horizons
    # 01:00 and 02:00 would reach the 05:00 charge, but it was announced at 03:00; 08:00 was withdrawn by then
    assert found == {T0 + 3 * H, T0 + 4 * H, T0 + 5 * H}
    assert charge_cutoffs(None, cutoffs, 60 * NS, 241) == set()


def test_a_subset_keeps_only_the_chosen_cutoffs_and_says_so(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    frame = pd.DataFrame({"cutoff": ["2026-01-03T00:00:00Z", "2026-01-03T01:00:00Z"], "median": [1.0, 2.0]})
    frame.to_csv(run / "forecasts.csv", index=False)
    (run / "manifest.json").write_text(json.dumps({"run_id": "r"}))
    out = subset_run(run, {T0 + H}, tmp_path / "sub", "one")
    assert pd.read_csv(out / "forecasts.csv")["median"].tolist() == [2.0]
    assert json.loads((out / "manifest.json").read_text())["subset"] == "one"
