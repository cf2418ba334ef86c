"""The one TOML config file shared by both services, validated at start-up.

Precedence (highest first): environment (`BESS_<SECTION>__<KEY>`), secrets from
`$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`), the TOML file, defaults.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from collector.common.config.forecaster import ForecasterSettings, ForecastTask
from collector.common.config.sections import (
    CollectorSettings,
    GxSettings,
    InfluxSettings,
    LoggingSettings,
)
from collector.common.errors import ConfigError

__all__ = [
    "CollectorSettings",
    "ForecastTask",
    "ForecasterSettings",
    "GxSettings",
    "InfluxSettings",
    "LoggingSettings",
    "Settings",
    "load_settings",
]

# Credential file name (in $CREDENTIALS_DIRECTORY) -> (section, key).
CREDENTIALS: dict[str, tuple[str, str]] = {
    "influx_password": ("influx", "password"),
    "influx_token": ("influx", "token"),
    "mqtt_password": ("gx", "mqtt_password"),
}
SECRET_KEYS = {(section, key) for section, key in CREDENTIALS.values()}


class Settings(BaseSettings):
    """Root of the config file."""

    model_config = SettingsConfigDict(
        env_prefix="BESS_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    site: str = Field("shop", min_length=1, description="Site name, the `site` tag on every point")
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    gx: GxSettings = Field(default_factory=GxSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    forecaster: ForecasterSettings = Field(default_factory=ForecasterSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init_settings carries the TOML file (and credentials); the environment overrides it.
        return (env_settings, init_settings)


def _read_credentials() -> dict[str, dict[str, str]]:
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    found: dict[str, dict[str, str]] = {}
    if not directory:
        return found
    for name, (section, key) in CREDENTIALS.items():
        path = Path(directory) / name
        # An empty credential (the units' SetCredential= default for a missing file) means "not set".
        if path.is_file() and (value := path.read_text().strip()):
            found.setdefault(section, {})[key] = value
    return found


def _merge(base: dict[str, Any], extra: dict[str, dict[str, str]]) -> dict[str, Any]:
    merged = dict(base)
    for section, values in extra.items():
        current = merged.get(section)
        merged[section] = {**(current if isinstance(current, dict) else {}), **values}
    return merged


def _secrets_in(data: dict[str, Any]) -> list[str]:
    found = []
    for section, key in sorted(SECRET_KEYS):
        part = data.get(section)
        if isinstance(part, dict) and part.get(key):
            found.append(f"{section}.{key}")
    return found


def _format_error(err: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(file)"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key (not a bess-edge setting; check the spelling)"
    if err["type"] == "missing":
        return f"{where}: required but missing"
    value = err.get("input")
    secret = tuple(str(p) for p in err["loc"][:2]) in SECRET_KEYS  # never echo a secret, even a malformed one
    shown = "" if secret or isinstance(value, dict | list) else f" (got {value!r})"
    return f"{where}: {err['msg']}{shown}"


def read_toml(path: Path) -> dict[str, Any]:
    """Read the file or raise ConfigError with a plain line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file ({exc.strerror})"]) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None


def load_settings(path: Path | None) -> Settings:
    """Load and validate the config; raise ConfigError listing every problem, one line each."""
    data: dict[str, Any] = {}
    problems: list[str] = []
    if path is not None:
        data = read_toml(path)
        secrets = _secrets_in(data)
        if secrets and path.stat().st_mode & stat.S_IROTH:
            problems.append(
                f"{path}: holds secrets ({', '.join(secrets)}) but is world-readable; "
                f"run `chmod o-r {path}` or move them to the environment / systemd credentials"
            )
    data = _merge(data, _read_credentials())
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        problems.extend(_format_error(dict(e)) for e in exc.errors())
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return settings
