"""check-config: OK + exit 0, or one plain line per problem + exit 2, without starting anything."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from collector.commands import check_config


def _check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = check_config.main(argparse.Namespace(config=path))
    out = capsys.readouterr()
    return code, [line for line in out.err.splitlines() if line], out.out


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body)
    return path


GOOD = """
site = "shop"
[influx]
url = "http://127.0.0.1:8086"
[gx]
host = "127.0.0.1"
[collector]
buffer_dir = "{buffer}"
"""


def test_when_config_is_good_then_ok_summary_and_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, problems, out = _check(_write(tmp_path, GOOD.format(buffer=tmp_path / "buf")), capsys)
    assert (code, problems) == (0, [])
    assert out.startswith("OK: site=shop influx=http://127.0.0.1:8086")
    assert not (tmp_path / "buf").exists(), "check-config must not create or start anything"


def test_when_file_missing_then_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, problems, _ = _check(tmp_path / "nope.toml", capsys)
    assert code == 2
    assert problems == [f"{tmp_path / 'nope.toml'}: config file not found"]


def test_when_types_wrong_and_key_unknown_then_every_problem_on_its_own_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = '[collector]\ninterval_s = "fast"\nbuffer_max_mb = -1\nbufer_dir = "/tmp/x"\n[gx]\nmodbus_port = 99999\n'
    code, problems, _ = _check(_write(tmp_path, body), capsys)
    assert code == 2
    assert len(problems) == 4
    assert any(p.startswith("collector.interval_s:") for p in problems)
    assert any(p.startswith("collector.buffer_max_mb:") for p in problems)
    assert any(p.startswith("collector.bufer_dir: unknown key") for p in problems)
    assert any(p.startswith("gx.modbus_port:") for p in problems)


def test_when_not_toml_then_exit_2_saying_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, problems, _ = _check(_write(tmp_path, "site = \n"), capsys)
    assert code == 2
    assert len(problems) == 1
    assert "not valid TOML" in problems[0]


def test_when_hosts_do_not_resolve_then_each_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = GOOD.format(buffer=tmp_path / "buf").replace("http://127.0.0.1:8086", "http://influx.invalid:8086")
    body = body.replace('host = "127.0.0.1"', 'host = "cerbo.invalid"')
    code, problems, _ = _check(_write(tmp_path, body), capsys)
    assert code == 2
    assert len(problems) == 2
    assert problems[0].startswith("influx.url: host name 'influx.invalid' does not resolve")
    assert problems[1].startswith("gx.host: host name 'cerbo.invalid' does not resolve")


def test_when_buffer_dir_is_under_a_file_then_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    code, problems, _ = _check(_write(tmp_path, GOOD.format(buffer=tmp_path / "afile" / "buf")), capsys)
    assert code == 2
    assert problems == [f"collector.buffer_dir: {tmp_path / 'afile'} exists but is not a directory"]


def test_when_buffer_limit_tiny_then_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = GOOD.format(buffer=tmp_path / "buf") + "buffer_max_mb = 0.01\n"
    code, problems, _ = _check(_write(tmp_path, body), capsys)
    assert code == 2
    assert len(problems) == 1
    assert problems[0].startswith("collector.buffer_max_mb: must be at least")


def test_when_both_sources_disabled_then_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = GOOD.format(buffer=tmp_path / "buf").replace(
        "[gx]\n", "[gx]\nmodbus_enabled = false\nmqtt_enabled = false\n"
    )
    code, problems, _ = _check(_write(tmp_path, body), capsys)
    assert code == 2
    assert problems == ["gx: both modbus_enabled and mqtt_enabled are false; nothing would be collected"]


def test_when_a_url_is_not_http_then_each_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = GOOD.format(buffer=tmp_path / "buf").replace("http://127.0.0.1:8086", "ftp://127.0.0.1:8086")
    body += '[collector.pv_forecast]\nurl = "api.forecast.solar"\n'
    code, problems, _ = _check(_write(tmp_path, body), capsys)
    assert code == 2
    assert [p.split(":")[0] for p in problems] == ["influx.url", "collector.pv_forecast.url"], problems
    assert all("must be an http:// or https:// URL with a host" in p for p in problems), problems
