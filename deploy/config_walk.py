"""The whole config file's model and a pure walk over it: every section and key with its type, default, bounds,
description, environment variable and (for a secret) credential file; and the TOML literal of a default.
deploy/gen_config_reference.py renders docs/configuration.md and deploy/config.example.toml from this.
"""

from __future__ import annotations

import json
import types
import typing
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

ENV_PREFIX = "BESS_"


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
