"""Mapping validation: targets, tags, flags, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bess_common.errors import ConfigError
from collector.importers.mapping import build_mapping, load_mapping, parse_map_flag

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("sensor.battery_power=system.battery_power_w*-1", {"source": "sensor.battery_power", "scale": -1.0}),
        ("Temp=system.pv_w*1000", {"source": "Temp", "scale": 1000.0}),
        ("a=system.pv_w*0.1-3", {"source": "a", "scale": 0.1, "offset": -3.0}),
        ("a=system.pv_w+2.5", {"source": "a", "offset": 2.5}),
        ("PV Power (W)=system.pv_w", {"source": "PV Power (W)"}),
    ],
)
def test_when_flag_is_well_formed_then_parsed(flag: str, expected: dict[str, object]) -> None:
    target = "system.battery_power_w" if "battery_power_w" in flag else "system.pv_w"
    assert parse_map_flag(flag) == {"target": target, **expected}


@pytest.mark.parametrize("flag", ["nothing", "a=system", "a=system.pv_w*x", "=system.pv_w"])
def test_when_flag_is_malformed_then_value_error(flag: str) -> None:
    with pytest.raises(ValueError, match="--map"):
        parse_map_flag(flag)


def test_when_value_is_applied_then_sign_scale_offset_in_that_order() -> None:
    mapping = build_mapping(
        {"map": [{"source": "p", "target": "system.pv_w", "scale": 1000, "offset": 5, "sign": -1}]}, []
    )
    assert mapping.map[0].apply(2.0) == -2005.0


def test_when_mapping_has_several_problems_then_each_is_one_line() -> None:
    data = {
        "map": [
            {"source": "a", "target": "system.battery_power"},
            {"source": "b", "target": "cell.voltage_v", "tags": {"device": "bms"}},
            {"source": "c", "target": "nope.x"},
            {"source": "d", "target": "system.pv_w", "sign": 2},
            {"source": "e", "target": "system.pv_w", "colour": "red"},
        ],
        "bogus": 1,
    }
    with pytest.raises(ConfigError) as err:
        build_mapping(data, [])
    text = "\n".join(err.value.problems)
    assert "map.0.target" in text and "not an importable field" in text
    assert "needs tags ['cell']" in text
    assert "unknown measurement 'nope'" in text
    assert "map.3.sign" in text
    assert "map.4.colour: unknown key" in text
    assert "bogus: unknown key" in text


def test_when_site_tag_is_given_in_tags_then_rejected() -> None:
    with pytest.raises(ConfigError, match="site tag"):
        build_mapping({"map": [{"source": "a", "target": "system.pv_w", "tags": {"site": "x"}}]}, [])


def test_when_same_source_and_target_twice_then_rejected() -> None:
    with pytest.raises(ConfigError, match="mapped twice"):
        build_mapping({}, ["a=system.pv_w", "a=system.pv_w*2"])


def test_when_file_is_not_toml_then_config_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("map = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_mapping(path, [])
    with pytest.raises(ConfigError, match="not found"):
        load_mapping(tmp_path / "missing.toml", [])


@pytest.mark.parametrize("name", ["powerflow-ha.toml", "pylontech-scp.toml"])
def test_when_shipped_example_mapping_is_loaded_then_valid(name: str) -> None:
    mapping = load_mapping(REPO / "deploy" / "import-mappings" / name, [])
    assert mapping.site
    assert mapping.format in ("ha", "pylontech-bms")


def test_when_ha_example_is_loaded_then_battery_power_is_flipped() -> None:
    mapping = load_mapping(REPO / "deploy" / "import-mappings" / "powerflow-ha.toml", [])
    (power,) = mapping.by_source()["sensor.battery_power"]
    assert power.apply(500.0) == -500.0  # HA + = discharging -> schema - = discharging
