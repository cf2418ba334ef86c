"""Secrets (InfluxDB token/password, MQTT password): where they may come from, and where they never go.

They reach the settings from the environment (`BESS_<SECTION>__<KEY>`) or systemd credentials
(`$CREDENTIALS_DIRECTORY/<name>`), and from the TOML file only when that file is not world-readable. They
never show in `repr(settings)`, a config error, or the output of `check-config`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bess_common.config import CREDENTIALS
from bess_common.errors import ConfigError
from collector.config import load_settings
from tests.conftest import python_env, run_cli

# Distinctive values: if any of them shows up in an output, it leaked.
SECRETS = {
    ("influx", "token"): "tok-7f3a9c-LEAKCHECK",
    ("influx", "password"): "pw-51be2d-LEAKCHECK",
    ("gx", "mqtt_password"): "mq-c0ffee-LEAKCHECK",
}
ENV = {f"BESS_{section.upper()}__{key.upper()}": value for (section, key), value in SECRETS.items()}


def _config(path: Path, body: str = "", mode: int = 0o600) -> Path:
    path.write_text(f'site = "t"\n[influx]\nurl = "http://127.0.0.1:8086"\n{body}')
    path.chmod(mode)
    return path


def _secret_values(settings: object) -> dict[tuple[str, str], str]:
    return {(section, key): getattr(getattr(settings, section), key).get_secret_value() for section, key in SECRETS}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def test_when_secrets_in_environment_then_they_reach_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(_config(tmp_path / "c.toml", mode=0o644))
    assert _secret_values(settings) == SECRETS


def test_when_secrets_in_credentials_directory_then_they_reach_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    for name, where in CREDENTIALS.items():
        (creds / name).write_text(SECRETS[where] + "\n")  # systemd copies the file as is, newline included
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    settings = load_settings(_config(tmp_path / "c.toml", mode=0o644))
    assert _secret_values(settings) == SECRETS


def test_when_environment_and_credential_both_set_then_environment_wins_and_file_loses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "influx_token").write_text("from-credential")
    (creds / "mqtt_password").write_text("")  # empty credential = not set: the file's value stays
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("BESS_INFLUX__PASSWORD", "from-env")
    config = _config(
        tmp_path / "c.toml", 'token = "from-file"\npassword = "from-file"\n[gx]\nmqtt_password = "from-file"\n'
    )
    settings = load_settings(config)
    assert settings.influx.token.get_secret_value() == "from-credential"
    assert settings.influx.password.get_secret_value() == "from-env"
    assert settings.gx.mqtt_password.get_secret_value() == "from-file"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (f'token = "{SECRETS["influx", "token"]}"\n', "influx.token"),
        (f'password = "{SECRETS["influx", "password"]}"\n', "influx.password"),
        (f'[gx]\nmqtt_password = "{SECRETS["gx", "mqtt_password"]}"\n', "gx.mqtt_password"),
    ],
)
def test_when_config_with_secret_is_world_readable_then_refused_until_chmod_o_r(
    tmp_path: Path, body: str, named: str
) -> None:
    config = _config(tmp_path / "c.toml", body, mode=0o644)
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    [line] = refused.value.problems
    assert "world-readable" in line and named in line and f"chmod o-r {config}" in line
    assert not any(value in line for value in SECRETS.values())
    config.chmod(0o640)  # what the line says to do
    assert load_settings(config).site == "t"


def test_when_config_without_secrets_is_world_readable_then_accepted(tmp_path: Path) -> None:
    assert load_settings(_config(tmp_path / "c.toml", 'username = "bess"\n', mode=0o644)).influx.username == "bess"


def test_when_secrets_loaded_then_repr_str_and_json_dump_hide_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(_config(tmp_path / "c.toml"))
    shown = "\n".join([repr(settings), str(settings), settings.model_dump_json(), repr(settings.model_dump())])
    for value in SECRETS.values():
        assert value not in shown
    assert "**********" in shown


def test_when_a_secret_has_the_wrong_type_then_the_error_line_does_not_echo_it(tmp_path: Path) -> None:
    # A numeric password written without quotes is a plausible mistake; the error goes to the journal.
    config = _config(tmp_path / "c.toml", "password = 20251125\ntoken = 98765432\n[gx]\nmqtt_password = 4242424242\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    text = "\n".join(refused.value.problems)
    assert "influx.password" in text and "influx.token" in text and "gx.mqtt_password" in text
    for value in ("20251125", "98765432", "4242424242"):
        assert value not in text
    # other keys still show what was given, which is what makes the line useful
    _config(config, 'timeout_s = "soon"\n')
    with pytest.raises(ConfigError) as other:
        load_settings(config)
    assert "'soon'" in "\n".join(other.value.problems)


def test_when_check_config_runs_with_secrets_then_no_secret_in_its_output(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_text(SECRETS["gx", "mqtt_password"])
    env = {**python_env(), "BESS_INFLUX__TOKEN": SECRETS["influx", "token"], "CREDENTIALS_DIRECTORY": str(creds)}
    config = _config(
        tmp_path / "c.toml",
        f'password = "{SECRETS["influx", "password"]}"\n[gx]\nhost = "127.0.0.1"\n'
        f'[collector]\nbuffer_dir = "{tmp_path / "buffer"}"\n',
    )
    ok = run_cli("collector", "check-config", "--config", str(config), env=env, timeout_s=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK:")
    config.chmod(0o644)
    refused = run_cli("collector", "check-config", "--config", str(config), env=env, timeout_s=60)
    assert refused.returncode == 2 and "world-readable" in refused.stderr
    for result in (ok, refused):
        for value in SECRETS.values():
            assert value not in result.stdout + result.stderr
