"""Axes say their units: lead time in s / min / h, power in W / kW / MW with the sign convention."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecaster.report.plots import lead_axis, power_axis_label
from forecaster.report.runfolder import RunData


def run_of(actual_w: list[float]) -> RunData:
    frame = pd.DataFrame({"actual": actual_w})
    return RunData(Path("run"), {"target": "battery_power_w", "unit": "W"}, frame, (0.1, 0.5, 0.9))


def test_lead_axes_name_their_unit() -> None:
    assert lead_axis(2.0) == ("s", 1 / 60)  # a 1 s recording forecasting 2 min ahead
    assert lead_axis(60.0) == ("min", 1.0)
    assert lead_axis(24 * 60.0) == ("h", 60.0)


def test_power_axes_scale_and_state_the_sign_convention() -> None:
    assert power_axis_label(run_of([0.0, 400.0, -300.0]), "battery") == "battery_power_w (W, + = charging)"
    assert power_axis_label(run_of([0.0, 2.0e6, -1.5e6]), "battery") == "battery_power_w (MW, + = charging)"
