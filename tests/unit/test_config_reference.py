"""The configuration reference and the example config: generated from the models, complete, loadable."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, SecretStr

from bess_common.config import CREDENTIALS, load_file
from deploy import config_walk as walk
from deploy import gen_config_reference as gen
from deploy.config_walk import ConfigFile

REGENERATE = f"out of date: run `{gen.COMMAND}` and commit the result"


@pytest.fixture(autouse=True)
def no_bess_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("BESS_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)


def model_keys(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, str]]:
    """(dotted section, key) for every leaf setting, straight from the models."""
    keys: set[tuple[str, str]] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        inner = getattr(annotation, "__args__", (None,))[0] if getattr(annotation, "__origin__", None) is list else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= model_keys(annotation, (*prefix, name))
        elif isinstance(inner, type) and issubclass(inner, BaseModel):
            keys |= model_keys(inner, (*prefix, name))
        else:
            keys.add((".".join(prefix), name))
    return keys


def mentioned_keys(text: str) -> set[tuple[str, str]]:
    """(section, key) for every key the example sets or shows in a comment."""
    found: set[tuple[str, str]] = set()
    section = ""
    for line in text.splitlines():
        if header := re.match(r"^#?\s*\[\[?([a-z_.]+)\]\]?\s*$", line):
            section = header.group(1)
        elif key := re.match(r"^#?\s*([a-z_0-9]+)\s*(=|: secret)", line):
            found.add((section, key.group(1)))
    return found


def test_when_models_change_then_the_committed_reference_and_example_must_follow() -> None:
    for path, text in gen.outputs().items():
        assert path.exists(), f"{path} missing; {REGENERATE}"
        assert path.read_text() == text, f"{path.name} {REGENERATE}"


def test_example_mentions_every_key_of_every_section() -> None:
    expected = model_keys(ConfigFile)
    missing = expected - mentioned_keys(gen.EXAMPLE_PATH.read_text())
    assert not missing, f"keys missing from the example: {sorted(missing)}"
    assert ("forecaster.finetune", "cron") in expected  # nested sections are really walked


def test_reference_documents_every_key_with_its_env_name() -> None:
    doc = gen.DOC_PATH.read_text()
    for section, key in model_keys(ConfigFile):
        heading = f"## [[{section}]]" if section == "forecaster.tasks" else (f"## [{section}]" if section else "## Top")
        part = doc.split(heading, 1)[1].split("\n## ", 1)[0]
        assert f"| `{key}` |" in part, f"{section}.{key} not documented under {heading}"
        if section != "forecaster.tasks":
            env = "BESS_" + "__".join(p.upper() for p in (*filter(None, section.split(".")), key))
            assert f"`{env}`" in part


def test_example_loads_and_equals_the_defaults() -> None:
    assert load_file(gen.EXAMPLE_PATH, ConfigFile).model_dump() == ConfigFile().model_dump()


def test_when_every_commented_key_is_uncommented_then_the_example_still_loads(tmp_path: Path) -> None:
    lines, uncommented = [], 0
    for line in gen.EXAMPLE_PATH.read_text().splitlines():
        if re.match(r"^# (\[\[[a-z_.]+\]\]|[a-z_0-9]+ = )", line) and '"..."' not in line:
            lines.append(line[2:])
            uncommented += 1
        else:
            lines.append(line)
    assert uncommented > len(model_keys(ConfigFile)) // 2
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    settings = load_file(path, ConfigFile)
    assert [task.name for task in settings.forecaster.tasks] == [t.name for t in ConfigFile().forecaster.tasks]
    assert settings.model_dump() == ConfigFile().model_dump()


def test_example_holds_no_secret_values() -> None:
    text = gen.EXAMPLE_PATH.read_text()
    data = tomllib.loads(text)
    for section, key in (CREDENTIALS[name] for name in CREDENTIALS):
        assert key not in data.get(section, {})
        assert not re.search(rf"^#?\s*{key}\s*=", text, re.MULTILINE), f"{section}.{key} has a value line"
        assert re.search(rf"^# {key}: secret, never in this file", text, re.MULTILINE)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("site",), "garage", "garage"),
        (("gx", "host"), "10.0.0.5", "10.0.0.5"),
        (("collector", "metrics_port"), "9200", 9200),
        (("forecaster", "finetune", "num_steps"), "7", 7),
        (("logging", "level"), "debug", "debug"),
    ],
)
def test_documented_env_names_are_the_ones_the_loader_reads(
    monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...], value: str, expected: Any
) -> None:
    section = next(s for s in walk.sections() if s.path == path[:-1])
    env = next(k.env for k in section.keys if k.name == path[-1])
    monkeypatch.setenv(env, value)
    loaded: Any = load_file(None, ConfigFile)
    for part in path:
        loaded = getattr(loaded, part)
    assert loaded == expected


def test_when_a_credential_file_is_empty_then_it_means_not_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[influx]\ntoken = "from-file"\n')
    config.chmod(0o600)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "influx_token").write_text("\n")  # what the units' SetCredential= fallback delivers
    (credentials / "mqtt_password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings = load_file(config, ConfigFile)
    assert settings.influx.token.get_secret_value() == "from-file"
    assert settings.gx.mqtt_password.get_secret_value() == "s3cret"


class _Demo(BaseModel):
    port: int = Field(502, ge=1, le=65535)
    ratio: float = Field(0.5, gt=0, lt=1)
    name: str = Field("x", min_length=1, pattern=r"^[a-z]+$")


@pytest.mark.parametrize(
    ("annotation", "text"),
    [
        (str, "string"),
        (int, "integer"),
        (float, "number"),
        (bool, "boolean"),
        (Path, "path"),
        (SecretStr, "string"),
        (Path | None, "path (optional)"),
        (list[str], "list of string"),
        (Literal["normal", "full"], '"normal" | "full"'),
    ],
)
def test_type_text(annotation: Any, text: str) -> None:
    assert walk.type_text(annotation) == text


@pytest.mark.parametrize(
    ("name", "text"),
    [("port", ">= 1, <= 65535"), ("ratio", "> 0, < 1"), ("name", "not empty, matches `^[a-z]+$`")],
)
def test_constraints_text(name: str, text: str) -> None:
    assert walk.constraints_text(_Demo.model_fields[name]) == text


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (True, "true"),
        (3, "3"),
        (1e-05, "1e-05"),
        ('a "q"', '"a \\"q\\""'),
        (Path("/var/lib/x"), '"/var/lib/x"'),
        (["a", "b"], '["a", "b"]'),
        (SecretStr(""), '""'),
    ],
)
def test_toml_value_round_trips(value: Any, literal: str) -> None:
    assert walk.toml_value(value) == literal
    parsed = tomllib.loads(f"v = {literal}")["v"]
    plain = value.get_secret_value() if isinstance(value, SecretStr) else value
    assert parsed == (str(plain) if isinstance(plain, Path) else plain)


def test_when_a_file_differs_then_stale_names_it(tmp_path: Path) -> None:
    same, other, absent = tmp_path / "same.md", tmp_path / "other.md", tmp_path / "absent.md"
    same.write_text("a\n")
    other.write_text("old\n")
    assert gen.stale({same: "a\n", other: "new\n", absent: "x\n"}) == [other, absent]
