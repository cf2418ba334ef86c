"""The import formats are one table: the command's choices, the mapping check and the dispatch all read it,
so a new format is its parser plus one entry."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from bess_common.errors import ConfigError
from bess_common.sample import Sample
from collector.commands.importer import build_spec, configure
from collector.config import Settings
from collector.importers import formats
from collector.importers.formats import FORMATS, ImportFormat
from collector.importers.mapping import Mapping
from collector.importers.records import Parsed
from collector.importers.sources import ImportSpec, RowCounter, parse_file

REPO_ROOT = Path(__file__).resolve().parents[2]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(["--config", "c.toml", *argv])


def _echo(lines: Iterable[str], file: str, spec: ImportSpec) -> Iterator[Parsed]:
    for n, line in enumerate(lines):
        yield Sample("system", {"site": spec.site, "file": file}, {"load_w": float(line)}, n)


def test_a_format_added_to_the_table_is_offered_checked_and_dispatched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(formats.FORMATS, "echo", ImportFormat("echo", _echo))
    data = tmp_path / "loads.txt"
    data.write_text("1.5\n2.5\n")
    spec, _ = build_spec(_args("--format", "echo", str(data)), Settings())
    with data.open("rb") as handle:
        items = list(parse_file(data, handle, spec, RowCounter()))
    assert items == [
        (str(data), Sample("system", {"site": "shop", "file": "loads.txt"}, {"load_w": 1.5}, 0)),
        (str(data), Sample("system", {"site": "shop", "file": "loads.txt"}, {"load_w": 2.5}, 1)),
    ]


def test_the_command_offers_exactly_the_registered_formats(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _args("--format", "nope", "x.csv")
    offered = re.search(r"choose from (.*)\)", capsys.readouterr().err)
    assert offered
    assert [c.strip(" '") for c in offered.group(1).split(",")] == list(FORMATS)


def test_a_mapping_for_an_unknown_format_is_a_clear_problem(tmp_path: Path) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_text('format = "hass"\n[[map]]\nsource = "a"\ntarget = "system.load_w"\n')
    data = tmp_path / "d.csv"
    data.write_text("")
    with pytest.raises(ConfigError) as err:
        build_spec(_args("--format", "ha", "--mapping", str(mapping), str(data)), Settings())
    assert err.value.problems == ["the mapping's format 'hass' is not one of ha, vrm, generic, pylontech-bms"]


def test_formats_that_need_a_map_say_so() -> None:
    needing = sorted(name for name, f in FORMATS.items() if f.needs_map)
    assert needing == ["generic", "ha"]
    assert Mapping().format is None


def test_every_shipped_mapping_names_a_registered_format() -> None:
    for path in sorted((REPO_ROOT / "deploy" / "import-mappings").glob("*.toml")):
        found = re.search(r'^format = "([^"]+)"', path.read_text(encoding="utf-8"), re.M)
        if found:
            assert found.group(1) in FORMATS, path
