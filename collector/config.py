"""The collector's sections of the config file ([gx], [collector]) and its root model. Pure pydantic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from bess_common.config import ForeignSection, Section, SharedSettings, http_url, load_file
from collector.gx.tables import unit_for_instance
from collector.observation import MULTI_ROLES

_DEVICE = re.compile(r"^(?P<service>[a-z]+)/(?P<instance>\d+)(@(?P<unit>\d+))?$")


@dataclass(frozen=True, slots=True)
class ModbusDevice:
    """One device instance to poll over Modbus, on its unit id."""

    service: str
    instance: int
    unit: int


def parse_device(text: str) -> ModbusDevice:
    """ "vebus/276" or "grid/30@30" as a ModbusDevice; ValueError with the reason otherwise."""
    found = _DEVICE.match(text.strip())
    if found is None:
        raise ValueError(f'{text!r}: expected SERVICE/INSTANCE or SERVICE/INSTANCE@UNIT, e.g. "vebus/276"')
    if found["service"] not in MULTI_ROLES:
        raise ValueError(f"{text!r}: unknown service {found['service']!r}; known: {', '.join(MULTI_ROLES)}")
    unit = int(found["unit"]) if found["unit"] else unit_for_instance(int(found["instance"]))
    if unit is None:
        raise ValueError(f"{text!r}: the GX gives instance {found['instance']} no unit id; add one as @UNIT")
    if not 0 <= unit <= 247:
        raise ValueError(f"{text!r}: unit id {unit} is outside 0..247")
    return ModbusDevice(found["service"], int(found["instance"]), unit)


class GxSettings(Section):
    """The Cerbo GX (or the simulator): addresses, unit ids and service instances."""

    host: str = Field("192.168.1.50", description="GX address on the LAN")
    modbus_port: int = Field(502, ge=1, le=65535)
    mqtt_port: int = Field(1883, ge=1, le=65535, description="1883 plain, 8883 TLS")
    portal_id: str = Field("", description="VRM portal id; empty = discover from N/+/system/0/Serial")
    modbus_enabled: bool = Field(True, description="Poll Modbus-TCP (system + shunt cross-check)")
    mqtt_enabled: bool = Field(True, description="Subscribe over MQTT (per-cell data, full precision)")
    system_unit_id: int = Field(100, ge=0, le=247, description="Modbus unit of com.victronenergy.system")
    shunt_unit_id: int = Field(100, ge=0, le=247, description="Lynx Shunt VE.Can instance 0 -> unit 100")
    shunt_instance: int = Field(0, ge=0, description="Device instance of the shunt (MQTT battery/<n>)")
    bms_unit_id: int = Field(225, ge=0, le=247, description="CAN-bus BMS -> unit 225")
    bms_instance: int = Field(512, ge=0, description="Device instance of the BMS (MQTT battery/<n>)")
    modbus_devices: list[str] = Field(
        default_factory=list,
        description='Inverter/chargers, solar chargers and meters to poll over Modbus, as "service/instance" '
        '(unit id from the GX\'s table, else = instance) or "service/instance@unit"; `discover` prints the list. '
        "MQTT finds every instance by itself",
    )
    modbus_timeout_s: float = Field(2.0, gt=0)
    mqtt_username: str = Field("bess-edge", description="Ignored by the GX but must be non-empty")
    mqtt_password: SecretStr = Field(SecretStr(""), description="Secret: env or credential mqtt_password")
    mqtt_tls: bool = Field(False, description="Use TLS (normally port 8883)")
    mqtt_ca_file: Path | None = Field(None, description="CA for the GX's self-signed certificate")
    mqtt_cert_sha256: str = Field("", description="Pin the broker certificate by SHA-256 fingerprint (hex)")

    @field_validator("modbus_devices")
    @classmethod
    def _devices(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_device(text)
        return value


# Default deny list of the long tail (patterns over "<service>/<instance><path>", fnmatch: * spans slashes).
LONG_TAIL_DENY: tuple[str, ...] = (
    "*/Interfaces/Mk2/Tunnel",  # the MK2 bus tunnel of VE.Bus remote configuration: raw frames, not telemetry
    # 30 days x ~15 values per tracker, republished whole (venus-influx-loader leaves it out as well)
    "solarcharger/*/History/Daily/*",
    "logger/*",  # the VRM logger's own bookkeeping (upload backlog, last contact)
    "*/Mgmt/*",  # process name and version, connection: constants of the D-Bus service itself
)


class LongTailSettings(Section):
    """Every GX topic the tables do not map, stored on change (and on each full republish) in `gx_topic`."""

    enabled: bool = Field(True, description="Store the long tail (needs gx.mqtt_enabled)")
    allow: list[str] = Field(
        default_factory=lambda: ["*"],
        description='Patterns over "<service>/<instance><path>" (fnmatch, * spans /): only these are stored',
    )
    deny: list[str] = Field(
        default_factory=lambda: list(LONG_TAIL_DENY),
        description="Patterns never stored, even when allowed (default: tunnels, history tables, housekeeping)",
    )
    device_rate_per_s: float = Field(20.0, gt=0, description="Points per second one device may store, sustained")
    device_burst: int = Field(2000, ge=1, description="Points one device may store at once (a full republish)")
    rate_per_s: float = Field(100.0, gt=0, description="Points per second the whole long tail may store, sustained")
    burst: int = Field(10000, ge=1, description="Points the whole long tail may store at once")
    max_topics: int = Field(20000, ge=1, description="Distinct topics tracked; new ones beyond are dropped, counted")


class PvForecastSettings(Section):
    """Optional PV power forecast from Forecast.Solar, stored as issued in `pv_forecast` (docs/pv-forecast.md)."""

    enabled: bool = Field(False, description="Fetch the forecast (off by default: it calls a public service)")
    url: str = Field(
        "https://api.forecast.solar",
        description="Base URL of a Forecast.Solar estimate API (the simulator serves one: docs/simulator.md)",
    )
    latitude: float | None = Field(None, ge=-90, le=90, description="Site latitude, degrees north (required)")
    longitude: float | None = Field(None, ge=-180, le=180, description="Site longitude, degrees east (required)")
    tilt_deg: float = Field(30.0, ge=0, le=90, description="Panel tilt: 0 horizontal .. 90 vertical")
    azimuth_deg: float = Field(
        0.0, ge=-180, le=180, description="Panel azimuth: 0 south, -90 east, 90 west, +-180 north"
    )
    kwp: float | None = Field(None, gt=0, le=100000, description="Installed module power, kWp (required)")
    interval_s: float = Field(
        3600.0, ge=900, description="Fetch period (the forecast changes at most every 15 min; 12 calls/h per IP)"
    )
    jitter_s: float = Field(300.0, ge=0, description="Random extra delay before each fetch (spreads the load)")
    timeout_s: float = Field(20.0, gt=0, le=60, description="HTTP timeout of one request")
    retry_initial_s: float = Field(30.0, gt=0, description="First retry delay after a failed fetch (doubles)")
    retry_max_s: float = Field(900.0, gt=0, description="Longest retry delay (a 429's retry time wins if later)")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return http_url(value)

    @model_validator(mode="after")
    def _check_site(self) -> PvForecastSettings:
        if not self.enabled:
            return self
        missing = [k for k in ("latitude", "longitude", "kwp") if getattr(self, k) is None]
        if missing:
            raise ValueError(f"enabled needs {', '.join(missing)} (the site's coordinates and kWp)")
        if self.latitude == 0 and self.longitude == 0:
            raise ValueError("latitude = longitude = 0 is the sea off Africa: set the site's coordinates")
        return self


class CollectorSettings(Section):
    """The collector daemon: grid, staleness, MQTT keepalive, buffer and flushing."""

    interval_s: float = Field(1.0, gt=0, le=60, description="Grid step; 1.0 = whole UTC seconds")
    buffer_dir: Path = Field(Path("/var/lib/bess-edge/buffer"), description="Durable buffer + dead letters")
    buffer_max_mb: float = Field(1024.0, gt=0, description="Buffer size limit; oldest data dropped beyond")
    buffer_sync: Literal["normal", "full"] = Field("full", description="SQLite synchronous mode")
    batch_max_lines: int = Field(5000, ge=1, description="Lines per InfluxDB write")
    flush_interval_s: float = Field(1.0, gt=0, description="How often the writer drains the buffer")
    retry_max_s: float = Field(30.0, gt=0, description="Backoff cap for InfluxDB retries")
    shutdown_flush_timeout_s: float = Field(10.0, ge=0, description="On SIGTERM, flush for at most this")
    ttl_shunt_s: float = Field(8.0, gt=0, description="Shunt/system values older than this are stale")
    ttl_cell_s: float = Field(10.0, gt=0, description="Per-cell values older than this are stale")
    ttl_system_s: float = Field(8.0, gt=0, description="System power-flow values staleness")
    keepalive_interval_s: float = Field(25.0, gt=0, le=55, description="Suppress-republish keepalive period")
    full_refresh_interval_s: float = Field(300.0, gt=0, description="Full republish period (constants)")
    stall_timeout_s: float = Field(10.0, gt=0, description="No heartbeat for this long -> reconnect")
    suspect_after_s: float = Field(
        300.0,
        ge=0,
        description="A device none of whose fast-moving values (gx/moving.csv) changed for this long is "
        "reported suspect (a hung GX service); 0 = off",
    )
    plan_settle_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="A gx_plan snapshot is written once the GX's plan (gx/plan.csv) has been still this long "
        "after a change (one snapshot per burst of slot writes)",
    )
    metrics_host: str = Field("127.0.0.1", description="Prometheus /metrics bind address")
    metrics_port: int = Field(9108, ge=0, le=65535, description="0 disables the endpoint")
    health_interval_s: float = Field(10.0, gt=0, description="collector_health write period")
    long_tail: LongTailSettings = Field(default_factory=LongTailSettings)
    pv_forecast: PvForecastSettings = Field(default_factory=PvForecastSettings)


class Settings(SharedSettings):
    """The config file as the collector reads it."""

    gx: GxSettings = Field(default_factory=GxSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    forecaster: ForeignSection = Field(default_factory=dict, description="Validated by the forecaster")


def load_settings(path: Path | None) -> Settings:
    """Load and validate the config file for the collector (ConfigError lists every problem)."""
    return load_file(path, Settings)
