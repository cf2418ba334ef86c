"""The tags of a measured row (bess_common.schema.row_tags), as the grid and the simulator's backfill write them."""

from __future__ import annotations

import pytest

from bess_common.schema import row_tags


@pytest.mark.parametrize(
    ("device", "instance", "battery", "cell", "expected"),
    [
        ("", -1, 0, 0, {"site": "shop"}),  # system row: site only
        ("shunt", -1, 0, 0, {"site": "shop", "device": "shunt"}),
        ("bms", -1, 0, 3, {"site": "shop", "device": "bms", "cell": "3"}),
        ("bms", -1, 2, 7, {"site": "shop", "device": "bms", "battery": "2", "cell": "7"}),
        ("grid", 0, 0, 0, {"site": "shop", "device": "grid", "instance": "0"}),  # instance 0 is a real instance
        ("", 279, 0, 0, {"site": "shop", "instance": "279"}),  # solarcharger: instance, no device tag
    ],
)
def test_when_a_row_has_device_instance_battery_or_cell_then_exactly_those_tags_are_set(
    device: str, instance: int, battery: int, cell: int, expected: dict[str, str]
) -> None:
    assert row_tags("shop", device, instance, battery, cell) == expected
