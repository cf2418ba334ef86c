"""The simulator at many cells: spans and chunks give the same bits as whole days; bounded chunk sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from collector.simulator.history import NS, history_samples
from collector.simulator.mqtt_publisher import payload_for
from collector.simulator.physics import BessPhysics
from collector.simulator.profiles import DAY_S
from collector.simulator.truth import CHUNK_CELL_SECONDS, Truth, chunk_seconds, day_columns, pick

DAY = 20_401  # 2025-11-09


@pytest.fixture(scope="module")
def physics() -> BessPhysics:
    """30 cells: values_at works in half days, so chunk and whole-day paths can be compared."""
    return BessPhysics(4, cells=30)


@pytest.mark.parametrize(("lo", "hi"), [(0, 1), (3_599, 3_721), (43_170, 43_290), (86_280, DAY_S), (12_345, 12_346)])
def test_when_a_span_is_computed_then_it_equals_the_whole_day_to_the_bit(
    physics: BessPhysics, lo: int, hi: int
) -> None:
    day = physics.day_arrays(DAY)
    span = physics.span_arrays(DAY, lo, hi)
    for name in ("current_a", "soc", "cell_v", "cell_t_c", "pack_v", "regime"):
        assert np.array_equal(getattr(span, name), getattr(day, name)[..., lo:hi]), name
    assert span.start_s == lo


def test_when_values_at_works_in_chunks_then_each_second_equals_the_whole_day_columns(physics: BessPhysics) -> None:
    truth = Truth(physics)
    assert truth.chunk_s < DAY_S  # 30 cells: chunked
    whole = day_columns(physics.day_arrays(DAY), truth.portal_id)
    for i in (0, truth.chunk_s - 1, truth.chunk_s, truth.chunk_s + 1, 61_234, DAY_S - 1):
        got = truth.values_at(DAY * DAY_S + i)
        expected = {key: pick(col, i) for key, col in whole.items()}
        got.pop(("system", "/Timestamp"))
        assert got == expected
        assert all(type(got[k]) is type(expected[k]) for k in got)


def test_when_sixteen_cells_then_a_chunk_is_the_whole_day() -> None:
    assert chunk_seconds(16) == DAY_S


@pytest.mark.parametrize("cells", [24, 2_048, 4_096, 16_384, 65_536])
def test_when_cells_grow_then_a_chunk_stays_within_the_budget_or_a_minute(cells: int) -> None:
    chunk_s = chunk_seconds(cells)
    assert DAY_S % chunk_s == 0
    assert cells * chunk_s <= CHUNK_CELL_SECONDS or chunk_s == 60


def test_when_many_cells_then_values_at_computes_only_a_chunk_of_per_cell_values() -> None:
    truth = Truth(BessPhysics(1, cells=4_096))
    t = DAY * DAY_S + 50_000
    values = truth.values_at(t)
    assert isinstance(values[("bms", "/Voltages/Cell4096")], float)
    assert values[("bms", "/System/NrOfCellsPerBattery")] == 4_096
    chunk = truth.chunk(DAY, 50_000 // truth.chunk_s * truth.chunk_s)
    assert all(matrix.shape == (4_096, truth.chunk_s) for _, matrix in chunk.blocks)
    sum_v = values[("bms", "/Voltages/Sum")]
    cells_v = sum(values[("bms", f"/Voltages/Cell{n}")] for n in range(1, 4_097))  # type: ignore[misc]
    assert sum_v == pytest.approx(cells_v, abs=0.01)


def test_when_history_crosses_a_chunk_boundary_then_rows_equal_the_truth(physics: BessPhysics) -> None:
    truth = Truth(physics)
    edge = DAY * DAY_S + truth.chunk_s
    rows = list(history_samples(physics, (edge - 1) * NS, (edge + 1) * NS))
    for t in (edge - 1, edge):
        cell30 = next(r for r in rows if r.ts_ns == t * NS and r.tags.get("cell") == "30")
        assert cell30.fields["voltage_v"] == truth.values_at(t)[("bms", "/Voltages/Cell30")]


@pytest.mark.parametrize("value", [52.310001373291016, 0.1, 1e20, -0.0, 12.0, 3, -5, 2**70, None, "C7", 'a"b', True])
@pytest.mark.parametrize(("role", "path"), [("bms", "/Voltages/Cell1"), ("settings", "/Settings/CGwacs/Hub4Mode")])
def test_when_a_payload_is_built_then_it_is_the_bytes_json_dumps_writes(role: str, path: str, value: object) -> None:
    body: dict[str, object] = {"value": value}
    if role == "settings":
        body.update({"min": 0, "max": 3})
    compact = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()  # as nlohmann's dump()
    assert payload_for(role, path, value) == compact  # type: ignore[arg-type]
