"""The one TOML config file shared by both services: the sections both use and the loader.

Precedence (highest first): environment (`BESS_<SECTION>__<KEY>`), secrets from
`$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`), the TOML file, defaults.

Each service validates the file against its own root model (`collector.config.Settings`,
`forecaster.config.Settings`): the shared sections below plus its own sections, typed; the other
service's sections are accepted as tables and validated by that service. Pure pydantic plus file reading.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from bess_common.errors import ConfigError

# Credential file name (in $CREDENTIALS_DIRECTORY) -> (section, key).
CREDENTIALS: dict[str, tuple[str, str]] = {
    "influx_password": ("influx", "password"),
    "influx_token": ("influx", "token"),
    "mqtt_password": ("gx", "mqtt_password"),
}
SECRET_KEYS = {(section, key) for section, key in CREDENTIALS.values()}

# A section owned by the other service: a TOML table, validated when that service loads the file.
ForeignSection = dict[str, Any]


class Section(BaseModel):
    """Base for every section: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class InfluxSettings(Section):
    """Where telemetry, forecasts and scores go: any server with the 1.x HTTP API (/write, /query)."""

    url: str = Field("http://127.0.0.1:8086", description="Base URL, http:// or https://")
    database: str = Field("bess", description="Database (on InfluxDB 2.x/3.x: the bucket name)")
    retention_policy: str = Field("", description="Retention policy; empty = the database default")
    retention_duration: str = Field(
        "",
        description="Keep data this long (InfluxQL duration: 400d, 52w, 720h; INF = forever), set at the "
        "collector's start on 1.x: on retention_policy (created if missing), else on the database's default "
        "policy. Empty = retention left as it is (nothing is ever deleted by bess-edge)",
    )
    username: str = Field("", description="1.x user (with password); leave empty for token auth")
    password: SecretStr = Field(SecretStr(""), description="Secret: env BESS_INFLUX__PASSWORD or credential")
    token: SecretStr = Field(SecretStr(""), description="Secret: env BESS_INFLUX__TOKEN or credential")
    ca_file: Path | None = Field(None, description="PEM CA bundle for https with a private CA")
    verify_tls: bool = Field(True, description="Verify the server certificate on https")
    timeout_s: float = Field(10.0, gt=0, description="HTTP timeout per request")
    create_database: bool = Field(True, description="Issue CREATE DATABASE at start (1.x only)")

    @field_validator("retention_duration")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        if value and value != "INF" and not re.fullmatch(r"(\d+[hdw])+", value):
            raise ValueError(
                f"must be an InfluxQL duration of hours, days or weeks (e.g. 400d, 52w) or INF, got {value!r}"
            )
        if value and value != "INF" and duration_h(value) < 1:
            raise ValueError("must be at least 1h (InfluxDB's minimum)")
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return http_url(value)


def http_url(value: str) -> str:
    """An http:// or https:// URL with a host, without a trailing slash; ValueError (a validator's message)
    otherwise."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {value!r}")
    return value.rstrip("/")


def duration_h(value: str) -> int:
    """Hours in an InfluxQL duration of h/d/w parts (validated before); INF -> 0, as InfluxDB shows it."""
    return sum(int(n) * {"h": 1, "d": 24, "w": 168}[u] for n, u in re.findall(r"(\d+)([hdw])", value))


class LoggingSettings(Section):
    """Logs go to stdout (journald under systemd)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = Field("auto", description="auto: console on a TTY")


ENV_PREFIX = "BESS_"


class SharedSettings(BaseSettings):
    """Root of the config file: what both services read. Each service's root adds its own sections."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    site: str = Field("shop", min_length=1, description="Site name, the `site` tag on every point")
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
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


S = TypeVar("S", bound=SharedSettings)


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


def _env_json_problems(error: SettingsError) -> list[str]:
    """Name the environment variable(s) whose JSON value could not be parsed."""
    problems = []
    for name, value in sorted(os.environ.items()):
        if not name.startswith(ENV_PREFIX) or value.lstrip()[:1] not in ("[", "{"):
            continue
        try:
            json.loads(value)
        except json.JSONDecodeError as exc:
            problems.append(f"{name}: not valid JSON ({exc.msg} at column {exc.colno})")
    return problems or [f"environment: {error}"]


def env_warnings(model: type[SharedSettings], environ: dict[str, str] | None = None) -> list[str]:
    """Lines for BESS_<SECTION>__<KEY> variables whose section does not exist (a misspelling such as
    BESS_FORECASTR__NUM_THREADS would otherwise be ignored without a word)."""
    environ = dict(os.environ) if environ is None else environ
    sections = set(model.model_fields)
    out = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section = name[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if section not in sections:
            known = ", ".join(f"{ENV_PREFIX}{s.upper()}__" for s in sorted(sections))
            out.append(f"{name}: ignored, {section!r} is not a config section (sections: {known})")
    return out


def load_file(path: Path | None, model: type[S]) -> S:
    """Load the file and validate it against one service's root `model`; raise ConfigError listing every
    problem, one line each."""
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
        settings = model(**data)
    except ValidationError as exc:
        problems.extend(_format_error(dict(e)) for e in exc.errors())
        raise ConfigError(problems) from None
    except SettingsError as exc:
        raise ConfigError(problems + _env_json_problems(exc)) from None
    if problems:
        raise ConfigError(problems)
    return settings
