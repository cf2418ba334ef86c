"""Generate docs/configuration.md and deploy/config.example.toml from the pydantic settings models.

Run `python -m deploy.gen_config_reference` after changing a settings model; `--check` exits 1 when the
committed files are out of date (the tests do the same). The walk over the models is pure; only main()
touches files.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bess_common.config import CREDENTIALS, SharedSettings
from collector.config import CollectorSettings, GxSettings
from forecaster.config import ForecasterSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = REPO_ROOT / "docs" / "configuration.md"
EXAMPLE_PATH = REPO_ROOT / "deploy" / "config.example.toml"
COMMAND = "python -m deploy.gen_config_reference"
ENV_PREFIX = "BESS_"
CREDENTIALS_DIR = "/etc/bess-edge/credentials"

# Keys written uncommented in the example: what nearly every site sets. Everything else is a comment
# showing the default, so a later release can change a default without the config freezing the old one.
ACTIVE_KEYS = {
    ("", "site"),
    ("influx", "url"),
    ("influx", "database"),
    ("gx", "host"),
    ("gx", "shunt_unit_id"),
    ("gx", "shunt_instance"),
    ("gx", "bms_unit_id"),
    ("gx", "bms_instance"),
}

# Hand-written guidance shown under a section heading (keyed by dotted section path).
SECTION_NOTES = {
    "influx": "InfluxDB 1.x: `username` plus the `influx_password` secret (or neither). InfluxDB 2.x/3.x "
    "through the 1.x-compatible API: the `influx_token` secret, with `database` = the bucket.",
    "gx": "Find the unit ids, instances and the portal id with `bess-collector discover` (docs/gx-setup.md).",
    "forecaster.tasks": "Each `[[forecaster.tasks]]` table is one forecast task. Defining any replaces the "
    "whole default list of tasks.",
}


class ConfigFile(SharedSettings):
    """The whole file: the shared sections and both services' own (each service validates its part)."""

    gx: GxSettings = Field(default_factory=GxSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    forecaster: ForecasterSettings = Field(default_factory=ForecasterSettings)


_SECRET_BY_KEY = {(section, key): name for name, (section, key) in CREDENTIALS.items()}


@dataclass(frozen=True)
class KeyDoc:
    """One setting: everything the reference and the example say about it."""

    name: str
    type_text: str
    default: Any  # PydanticUndefined when required
    description: str
    constraints: str
    env: str
    secret: str | None  # credential file name when the key is a secret

    @property
    def required(self) -> bool:
        """True when the key has no default."""
        return self.default is PydanticUndefined


@dataclass(frozen=True)
class SectionDoc:
    """One TOML table (or array of tables) and its keys."""

    path: tuple[str, ...]  # () = top level
    doc: str
    keys: list[KeyDoc] = field(default_factory=list)
    array: bool = False
    default_items: list[dict[str, Any]] = field(default_factory=list)  # for arrays of tables

    @property
    def dotted(self) -> str:
        """The TOML table name, e.g. "forecaster.finetune"."""
        return ".".join(self.path)


# ------------------------------------------------------------------------------------------------ walk


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """(model class, is_list) when the annotation is a model or a list of models."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item, True
    return None, False


def type_text(annotation: Any) -> str:
    """A short human name for a field's type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        text = " | ".join(type_text(a) for a in inner)
        return f"{text} (optional)" if len(inner) < len(args) else text
    if origin is list:
        return f"list of {type_text(args[0])}" if args else "list"
    names = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path", SecretStr: "string"}
    if isinstance(annotation, type) and annotation in names:
        return names[annotation]
    return getattr(annotation, "__name__", str(annotation))


def constraints_text(info: FieldInfo) -> str:
    """Bounds and patterns from the field's metadata, e.g. ">= 1, <= 65535"."""
    parts = []
    for item in info.metadata:
        for attr, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if isinstance(item, getattr(annotated_types, attr.capitalize())):
                parts.append(f"{symbol} {getattr(item, attr)}")
        if isinstance(item, annotated_types.MinLen):
            parts.append("not empty" if item.min_length == 1 else f"at least {item.min_length} characters")
        if isinstance(item, annotated_types.MaxLen):
            parts.append(f"at most {item.max_length} characters")
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            parts.append(f"matches `{pattern}`")
    return ", ".join(parts)


def _key_doc(path: tuple[str, ...], name: str, info: FieldInfo) -> KeyDoc:
    default = info.get_default(call_default_factory=True) if not info.is_required() else PydanticUndefined
    env = ENV_PREFIX + "__".join(part.upper() for part in (*path, name))
    secret = _SECRET_BY_KEY.get((path[0], name)) if len(path) == 1 else None
    return KeyDoc(
        name=name,
        type_text=type_text(info.annotation),
        default=default,
        description=(info.description or "").strip(),
        constraints=constraints_text(info),
        env=env,
        secret=secret,
    )


def walk(model: type[BaseModel], path: tuple[str, ...] = ()) -> list[SectionDoc]:
    """Every section of `model` in declaration order: its own keys first, then nested tables."""
    doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ and path else ""
    own = SectionDoc(path=path, doc=doc)
    nested: list[SectionDoc] = []
    for name, info in model.model_fields.items():
        sub, is_list = _model_of(info.annotation)
        if sub is None:
            own.keys.append(_key_doc(path, name, info))
        elif is_list:
            defaults = info.get_default(call_default_factory=True) or []
            items = [item.model_dump(mode="json") for item in defaults]
            inner = walk(sub, (*path, name))
            nested.append(
                SectionDoc(path=inner[0].path, doc=inner[0].doc, keys=inner[0].keys, array=True, default_items=items)
            )
            nested.extend(inner[1:])
        else:
            nested.extend(walk(sub, (*path, name)))
    return [own, *nested] if own.keys or not path else nested


def sections() -> list[SectionDoc]:
    """All sections of the config file."""
    return walk(ConfigFile)


# ---------------------------------------------------------------------------------------------- values


def toml_value(value: Any) -> str:
    """A TOML literal for a default value."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def default_text(key: KeyDoc, section: SectionDoc) -> str:
    """The default as shown in the reference table."""
    if key.required:
        return "required"
    if key.default is None or key.secret:
        return "unset"
    return f"`{toml_value(key.default)}`"


# -------------------------------------------------------------------------------------------- markdown


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _describe(key: KeyDoc) -> str:
    parts = [key.description] if key.description and not key.secret else []
    if key.constraints:
        parts.append(f"({key.constraints})")
    if key.secret:
        parts.append(f"**Secret**: set it with `{key.env}` or the credential file `{key.secret}`, never in the file.")
    return " ".join(parts)


def render_markdown(all_sections: Sequence[SectionDoc]) -> str:
    """docs/configuration.md."""
    secrets = [(name, section, key) for name, (section, key) in CREDENTIALS.items()]
    lines = [
        "# Configuration reference",
        "",
        f"<!-- Generated by `{COMMAND}` from the settings models; do not edit by hand. -->",
        "",
        "Both services read one TOML file, normally `/etc/bess-edge/config.toml`. `site`, `[influx]` and",
        "`[logging]` are shared; `[gx]` and `[collector]` belong to the collector, `[forecaster]` to the",
        "forecaster, and each service validates the shared sections and its own. An annotated example with",
        "every key is `deploy/config.example.toml` (installed as the initial config). Unknown keys are an error;",
        "`bess-collector check-config --config FILE` and `bess-forecaster check-config --config FILE` list",
        "every problem in their sections, one line each.",
        "",
        "Where a value comes from, highest first:",
        "",
        "1. the environment: `BESS_<SECTION>__<KEY>` (upper case, two underscores between levels), e.g.",
        "   `BESS_GX__HOST=10.0.0.5`; a list or table is given as JSON;",
        "2. systemd credentials: files in `$CREDENTIALS_DIRECTORY` (secrets only, see below);",
        "3. the TOML file;",
        "4. the defaults listed here.",
        "",
        "## Secrets",
        "",
        "Secrets never belong in the config file (a config holding one must not be world-readable, or",
        "loading fails). Give them as environment variables or, under systemd, as credentials: root-only",
        f"files in `{CREDENTIALS_DIR}/` that the units pass in with `LoadCredential=`. A missing or empty",
        'file means "not set".',
        "",
        "| Secret | Credential file | Environment |",
        "|---|---|---|",
    ]
    for name, table, secret_key in secrets:
        env = f"{ENV_PREFIX}{table.upper()}__{secret_key.upper()}"
        lines.append(f"| `{table}.{secret_key}` | `{CREDENTIALS_DIR}/{name}` | `{env}` |")
    for section in all_sections:
        title = f"[[{section.dotted}]]" if section.array else (f"[{section.dotted}]" if section.path else "Top level")
        lines += ["", f"## {title}"]
        for text in filter(None, [section.doc, SECTION_NOTES.get(section.dotted)]):
            lines += ["", text]
        if section.array and section.default_items:
            names = ", ".join(f"`{item.get('name', '?')}`" for item in section.default_items)
            lines += ["", f"Default: {len(section.default_items)} tables ({names}); see the example file."]
        if section.array:
            env = ENV_PREFIX + "__".join(part.upper() for part in section.path)
            lines += ["", f"Environment: `{env}` as a JSON list of tables (replaces the whole list)."]
        lines += ["", "| Key | Type | Default | Environment | Description |", "|---|---|---|---|---|"]
        for key in section.keys:
            env = f"`{key.env}`" if not section.array else "(see above)"
            lines.append(
                f"| `{key.name}` | {_cell(key.type_text)} | {_cell(default_text(key, section))} | "
                f"{env} | {_cell(_describe(key))} |"
            )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- TOML example


def _comment_block(text: str, width: int = 108) -> list[str]:
    words, lines, line = text.split(), [], "#"
    for word in words:
        if len(line) + 1 + len(word) > width and line != "#":
            lines.append(line)
            line = "#"
        line += " " + word
    if line != "#":
        lines.append(line)
    return lines


def _example_key(section: SectionDoc, key: KeyDoc) -> list[str]:
    """The comment lines describing a key, then its (usually commented) `key = default` line."""
    about = "" if key.secret else key.description
    extra = ", ".join(filter(None, [f"one of {key.type_text}" if '"' in key.type_text else "", key.constraints]))
    if extra:
        about = f"{about} ({extra})" if about else f"({extra})"
    lines = _comment_block(about) if about else []
    if key.secret:
        lines.append(
            f"# {key.name}: secret, never in this file; put it in {CREDENTIALS_DIR}/{key.secret} "
            f"(mode 0600) or {key.env}"
        )
    elif key.required:
        lines.append(f'# {key.name} = "..."   # required')
    elif key.default is None:
        lines.append(f'# {key.name} = "..."   # unset by default')
    else:
        active = (section.dotted, key.name) in ACTIVE_KEYS and not section.array
        lines.append(f"{'' if active else '# '}{key.name} = {toml_value(key.default)}")
    return lines


def render_example(all_sections: Sequence[SectionDoc]) -> str:
    """deploy/config.example.toml."""
    lines = [
        "# bess-edge configuration: one file for both services (collector and forecaster).",
        "# deploy/install.sh installs it as /etc/bess-edge/config.toml and never overwrites it afterwards.",
        "# Every key is listed with its description; a commented key shows its default. Uncomment to change.",
        "# Full reference: docs/configuration.md. Check a config: bess-collector check-config --config FILE",
        "# and bess-forecaster check-config --config FILE (each checks the shared sections and its own).",
        "# Any key can also come from the environment: BESS_<SECTION>__<KEY>, e.g. BESS_GX__HOST=10.0.0.5.",
        "# Secrets (InfluxDB token or password, MQTT password) never go in this file: put them in root-only",
        f"# files {CREDENTIALS_DIR}/influx_token, influx_password, mqtt_password (systemd credentials)",
        "# or in the environment (BESS_INFLUX__TOKEN, BESS_INFLUX__PASSWORD, BESS_GX__MQTT_PASSWORD).",
        f"# (In the source tree this file is generated by `{COMMAND}`.)",
    ]
    for section in all_sections:
        lines.append("")
        if section.array:
            lines += _array_example(section)
            continue
        if section.path:
            lines.append(f"[{section.dotted}]")
        for text in filter(None, [section.doc, SECTION_NOTES.get(section.dotted)]):
            lines += _comment_block(text)
        for key in section.keys:
            lines += _example_key(section, key)
    return "\n".join(lines).rstrip() + "\n"


def _array_example(section: SectionDoc) -> list[str]:
    lines = _comment_block(section.doc) if section.doc else []
    note = SECTION_NOTES.get(section.dotted)
    if note:
        lines += _comment_block(note)
    items = section.default_items or [{}]
    lines.append("# The defaults (uncomment the tables and the `# key = value` lines to change them):")
    for number, item in enumerate(items):
        lines.append(f"# [[{section.dotted}]]")
        for key in section.keys:
            if number == 0:  # descriptions once, on the first table, as "##" so uncommenting stays easy
                lines += ["#" + line for line in _example_key(section, key)[:-1]]
            value = item.get(key.name, key.default)
            shown = '"..."' if value is PydanticUndefined or value is None else toml_value(value)
            lines.append(f"# {key.name} = {shown}")
        lines.append("#")
    if lines[-1] == "#":
        lines.pop()
    return lines


# ------------------------------------------------------------------------------------------------ main


def outputs() -> dict[Path, str]:
    """What the generator writes, by path."""
    all_sections = sections()
    return {DOC_PATH: render_markdown(all_sections), EXAMPLE_PATH: render_example(all_sections)}


def stale(files: dict[Path, str]) -> list[Path]:
    """The files whose committed content differs from the generated one."""
    return [path for path, text in files.items() if not path.exists() or path.read_text() != text]


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with --check, verify) the reference and the example."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date, write nothing")
    args = parser.parse_args(argv)
    files = outputs()
    out_of_date = stale(files)
    if args.check:
        for path in out_of_date:
            print(f"{path.relative_to(REPO_ROOT)} is out of date; run `{COMMAND}`", file=sys.stderr)
        return 1 if out_of_date else 0
    for path in out_of_date:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    if not out_of_date:
        print("configuration reference and example are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
