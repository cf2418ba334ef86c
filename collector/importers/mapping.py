"""The import mapping: which entity / column becomes which measurement.field, with scale, offset and sign.

A small TOML file (validated by pydantic, unknown keys rejected) or `--map` flags:

    [[map]]
    source = "sensor.battery_power"     # HA entity_id, or a CSV column label
    target = "system.battery_power_w"   # measurement.field of the schema (docs/schema.md)
    scale = 1.0                         # value = sign * (raw * scale + offset)
    offset = 0.0
    sign = -1                           # HA: + = discharging; the schema: + = charging

A cumulative energy counter (a kWh total of PV, house or grid) becomes a power field with the rate
transform (collector.importers.rate): `transform = "rate"` and `counter_unit = "kWh"` (or "Wh", "MWh");
the target must be a power field (`..._w`) that no other source feeds; scale, offset and sign then apply
to the power in W.

The flag form is `SOURCE=MEASUREMENT.FIELD[*SCALE][+OFFSET|-OFFSET]`, e.g.
`--map 'sensor.battery_power=system.battery_power_w*-1'` or `--map 'Temp=battery.temperature_c*0.1'`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bess_common import schema
from bess_common.errors import ConfigError

# The fields an importer may write, per measurement (a subset of docs/schema.md: measured quantities).
IMPORTABLE_FIELDS: dict[str, frozenset[str]] = {
    schema.SYSTEM: frozenset(
        {
            "battery_power_w",
            "battery_soc_pct",
            "battery_voltage_v",
            "battery_current_a",
            "pv_w",
            "load_w",
            "grid_w",
            "pv_dc_w",
            "dc_system_power_w",
            *(f"{kind}_l{n}_w" for kind in ("load", "grid", "pv_ac_output", "pv_ac_grid") for n in (1, 2, 3)),
        }
    ),
    schema.BATTERY: frozenset({"voltage_v", "current_a", "power_w", "soc_pct", "temperature_c"}),
    schema.CELL: frozenset({"voltage_v", "temperature_c"}),
}
REQUIRED_TAGS = {schema.SYSTEM: (), schema.BATTERY: ("device",), schema.CELL: ("device", "cell")}
WH_PER_UNIT = {"Wh": 1.0, "kWh": 1000.0, "MWh": 1_000_000.0}
_TAG_VALUE = re.compile(r"^[A-Za-z0-9_.:-]+$")
_NUM = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_FLAG = re.compile(
    rf"^(?P<source>.+?)=(?P<target>[a-z_]+\.[a-z0-9_]+)(?:\*(?P<scale>[-+]?{_NUM}))?"
    rf"(?P<offset>[-+]{_NUM})?$"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMap(_Strict):
    """One source entity / column -> one schema field."""

    source: str = Field(min_length=1, description="HA entity_id or CSV column label (exact)")
    target: str = Field(description="measurement.field, e.g. system.battery_power_w")
    scale: float = Field(1.0, description="Multiply the raw value (unit conversion: kW -> W is 1000)")
    offset: float = Field(0.0, description="Add after scaling")
    sign: Literal[1, -1] = Field(1, description="-1 flips a '+ = discharging' source to the schema")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags (device, cell)")
    transform: Literal["none", "rate"] = Field(
        "none", description="rate: the source is a cumulative energy counter; write its rate of change in W"
    )
    counter_unit: Literal["Wh", "kWh", "MWh"] | None = Field(None, description="rate: the counter's unit")

    @field_validator("target")
    @classmethod
    def _check_target(cls, value: str) -> str:
        measurement, _, field = value.partition(".")
        if measurement not in IMPORTABLE_FIELDS:
            raise ValueError(f"unknown measurement {measurement!r} (use one of {sorted(IMPORTABLE_FIELDS)})")
        if field not in IMPORTABLE_FIELDS[measurement]:
            raise ValueError(f"{field!r} is not an importable field of {measurement!r} (see docs/schema.md)")
        return value

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        for key, value in tags.items():
            if key in ("site",):
                raise ValueError("the site tag comes from --site / the mapping's site, not from tags")
            if not _TAG_VALUE.match(key) or not _TAG_VALUE.match(value):
                raise ValueError(f"tag {key}={value!r}: use letters, digits, _ . : - only")
        return tags

    @model_validator(mode="after")
    def _check_required_tags(self) -> FieldMap:
        missing = [t for t in REQUIRED_TAGS[self.measurement] if t not in self.tags]
        if missing:
            raise ValueError(f'{self.target} needs tags {missing} (e.g. tags = {{device = "bms"}})')
        return self

    @model_validator(mode="after")
    def _check_rate(self) -> FieldMap:
        if self.transform == "rate":
            if self.counter_unit is None:
                raise ValueError('transform = "rate" needs counter_unit ("Wh", "kWh" or "MWh")')
            if not self.field.endswith("_w"):
                raise ValueError(f'transform = "rate" gives a power in W: {self.target} is not a power field')
        elif self.counter_unit is not None:
            raise ValueError('counter_unit is only used with transform = "rate"')
        return self

    @property
    def measurement(self) -> str:
        """The measurement part of target."""
        return self.target.partition(".")[0]

    @property
    def field(self) -> str:
        """The field part of target."""
        return self.target.partition(".")[2]

    def apply(self, raw: float) -> float:
        """Raw source value -> schema value (a rate map passes the counter reading on unchanged)."""
        if self.transform == "rate":
            return raw
        return self.sign * (raw * self.scale + self.offset)

    def rate_w(self, delta: float, seconds: float) -> float:
        """A counter's increase over `seconds` -> the mean power in W (then scale, offset and sign)."""
        watts = delta * WH_PER_UNIT[self.counter_unit or "Wh"] * 3600.0 / seconds
        return self.sign * (watts * self.scale + self.offset)


class PylontechOptions(_Strict):
    """Options of the pylontech-bms format (its columns are fixed)."""

    min_voltage_v: float = Field(40.0, gt=0, description="Module rows below this voltage are bad rows")
    direction_window_s: float = Field(900.0, gt=0, description="Half-window of the SoC / voltage slope")
    soc_slope_min_pct: float = Field(0.1, ge=0, description="Mean-SoC change that decides a direction")
    voltage_slope_min_v: float = Field(0.01, ge=0, description="Mean-voltage change, the fallback rule")
    device_prefix: str = Field("module", pattern=r"^[A-Za-z0-9_-]+$", description="device tag = prefix + k")
    pack: bool = Field(True, description="Also write a pack-level `system` row per timestamp")


class Mapping(_Strict):
    """A whole mapping file."""

    format: str | None = Field(None, description="The --format it is for (collector.importers.formats)")
    site: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]+$", description="Default for --site")
    time_column: str | None = Field(None, description="generic / vrm: the timestamp column label")
    time_format: str | None = Field(None, description="iso | epoch_s | epoch_ms | a strptime pattern")
    tz: str | None = Field(None, description="Zone of naive timestamps (default UTC)")
    map: list[FieldMap] = Field(default_factory=list)
    pylontech: PylontechOptions = Field(default_factory=PylontechOptions)

    @model_validator(mode="after")
    def _unique_sources(self) -> Mapping:
        seen: set[tuple[str, str]] = set()
        for entry in self.map:
            key = (entry.source, entry.target)
            if key in seen:
                raise ValueError(f"{entry.source} -> {entry.target} is mapped twice")
            seen.add(key)
        for entry in self.map:
            others = [e.source for e in self.map if e.target == entry.target and e.tags == entry.tags and e != entry]
            if entry.transform == "rate" and others:
                raise ValueError(f"{entry.target} is a rate of {entry.source} and cannot also come from {others}")
        return self

    def by_source(self) -> dict[str, list[FieldMap]]:
        """source -> its field maps (one source may feed several fields)."""
        out: dict[str, list[FieldMap]] = {}
        for entry in self.map:
            out.setdefault(entry.source, []).append(entry)
        return out


def _format_error(err: Any, origin: str) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(file)"
    if err["type"] == "extra_forbidden":
        return f"{origin}: {where}: unknown key"
    if err["type"] == "missing":
        return f"{origin}: {where}: required but missing"
    return f"{origin}: {where}: {err['msg']}"


def parse_map_flag(text: str) -> dict[str, Any]:
    """`SOURCE=MEASUREMENT.FIELD[*SCALE][+OFFSET]` -> the dict of one [[map]] entry; ValueError if malformed."""
    match = _FLAG.match(text.strip())
    if not match:
        raise ValueError(f"--map {text!r}: expected SOURCE=MEASUREMENT.FIELD[*SCALE][+OFFSET]")
    entry: dict[str, Any] = {"source": match["source"], "target": match["target"]}
    try:
        if match["scale"]:
            entry["scale"] = float(match["scale"])
        if match["offset"]:
            entry["offset"] = float(match["offset"])
    except ValueError:
        raise ValueError(f"--map {text!r}: scale / offset must be numbers") from None
    return entry


def build_mapping(data: dict[str, Any], flags: list[str], origin: str = "mapping") -> Mapping:
    """Validate file data plus --map flags (appended to [[map]]); ConfigError with one line per problem."""
    problems: list[str] = []
    entries = list(data.get("map", []))
    for flag in flags:
        try:
            entries.append(parse_map_flag(flag))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(problems)
    try:
        return Mapping(**{**data, "map": entries})
    except ValidationError as exc:
        raise ConfigError([_format_error(e, origin) for e in exc.errors()]) from None


def load_mapping(path: Path | None, flags: list[str]) -> Mapping:
    """Read and validate a mapping TOML (optional) plus --map flags."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([f"{path}: mapping file not found"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{path}: cannot read mapping file ({exc})"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None
    return build_mapping(data, flags, origin=str(path) if path else "--map")
