"""The model registry and the one-shot commands under faults, against a real InfluxDB and the tiny offline
Chronos-2: a damaged manifest or adapter, an invalid cron, a read-only registry, a damaged history, bad
environment overrides, a pruned rollback target, a fine-tune with no data, a context beyond the model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bess_common.influx import InfluxClient
from deploy.localservices import InfluxServer
from forecaster.registry import Registry
from tests.conftest import REPO_ROOT, python_env, run_cli
from tests.integration.fcsupport import add_version, forecast_rows, make_adapter, read_only_command, task_toml
from tests.integration.fcsupport import write_config as _write_config
from tests.integration.test_forecaster_service import fill

pytestmark = pytest.mark.integration

T5M = task_toml("t5m", cadence="5m", resolution="5m", context=576, horizon=24)
AT = "2026-01-04T12:00:00"  # inside the synthetic history of `fill`
ALL_MODELS = {"base", "finetuned", "persistence", "seasonal_naive"}


@pytest.fixture(scope="module")
def tiny_adapter(tiny_chronos_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real LoRA adapter of the tiny model, copied into each test's registry."""
    return make_adapter(tiny_chronos_dir, tmp_path_factory.mktemp("adapter"))


def config_for(tmp_path: Path, url: str, tiny: Path, **kw: object) -> Path:
    return _write_config(tmp_path / "config.toml", url, tiny, tmp_path / "models", [T5M], **kw)  # type: ignore[arg-type]


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def printed(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What the command printed for the user (its JSON log lines left out)."""
    return [ln for ln in result.stdout.splitlines() if not ln.startswith("{")]


def test_when_a_manifest_is_damaged_then_that_version_is_set_aside_and_forecasts_go_on(
    influx: InfluxClient, influx_server: InfluxServer, tiny_chronos_dir: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    fill(influx)
    registry = Registry(tmp_path / "models")
    add_version(registry, tiny_adapter, "ft-a", active=True)
    damaged = add_version(registry, tiny_adapter, "ft-b")
    (damaged.path / "manifest.json").write_text('{"mode": "lora", "num_st')  # cut off mid-write
    config = config_for(tmp_path, influx_server.url, tiny_chronos_dir)

    predicted = run_cli("forecaster", "predict", "--config", str(config), "--at", AT)
    assert predicted.returncode == 0 and "Traceback" not in output(predicted), output(predicted)[-3000:]
    rows = forecast_rows(influx)
    assert {r["model"] for r in rows} == ALL_MODELS
    assert all(not r.get("fallback") for r in rows)
    assert {r["model_version"] for r in rows if r["model"] == "finetuned"} == {"ft-a"}
    set_aside = [ln for ln in predicted.stdout.splitlines() if "registry_version_set_aside" in ln]
    assert len(set_aside) == 1 and "ft-b" in set_aside[0]

    listed = run_cli("forecaster", "models", "--config", str(config))
    assert listed.returncode == 0 and "Traceback" not in output(listed)
    line_b = next(ln for ln in printed(listed) if "ft-b" in ln)
    assert "BROKEN" in line_b and "not valid JSON" in line_b
    assert any(ln.startswith("* ft-a") and "BROKEN" not in ln for ln in printed(listed))


def test_when_the_active_adapter_is_truncated_or_deleted_then_finetuned_is_a_tagged_fallback_and_models_says_so(
    influx: InfluxClient, influx_server: InfluxServer, tiny_chronos_dir: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    fill(influx)
    registry = Registry(tmp_path / "models")
    active = add_version(registry, tiny_adapter, "ft-a", active=True)
    weights = active.adapter_dir / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a disk filled mid-copy
    config = config_for(tmp_path, influx_server.url, tiny_chronos_dir)

    predicted = run_cli("forecaster", "predict", "--config", str(config), "--at", AT)
    assert "Traceback" not in output(predicted), output(predicted)[-3000:]
    assert "fallbacks: finetuned" in predicted.stdout
    rows = forecast_rows(influx)
    finetuned = [r for r in rows if r["model"] == "finetuned"]
    assert len(finetuned) == 24 and all(
        r["fallback"] == "persistence" and r["model_version"] == "ft-a" for r in finetuned
    )
    assert all(not r.get("fallback") for r in rows if r["model"] != "finetuned")
    listed = run_cli("forecaster", "models", "--config", str(config))
    active_line = next(ln for ln in printed(listed) if ln.startswith("* ft-a"))
    assert listed.returncode == 1 and "BROKEN" in active_line and "sha256" in active_line

    shutil.rmtree(active.path)  # the version folder deleted by hand
    predicted = run_cli("forecaster", "predict", "--config", str(config), "--at", "2026-01-04T18:00:00")
    assert "Repo id" not in output(predicted) and "Traceback" not in output(predicted)
    late = [r for r in forecast_rows(influx) if r["model"] == "finetuned" and r["fallback"] == "persistence"]
    assert len(late) == 48  # the second cut-off's 24 points too
    listed = run_cli("forecaster", "models", "--config", str(config))
    assert listed.returncode == 1 and "BROKEN: the active version's folder is missing" in listed.stdout


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("61 3 * * sun", "61 is out of range 0-59"),
        ("every sunday", "has 2 fields"),
        ("0 3 * *", "has 4 fields"),
        ("0 3 * * 8", "8 is out of range 0-7"),
    ],
)
def test_when_the_finetune_cron_is_invalid_then_check_config_and_serve_name_it_and_exit_2(
    cron: str, problem: str, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    config = config_for(tmp_path, "http://127.0.0.1:9", tiny_chronos_dir, cron=cron)
    checked = run_cli("forecaster", "check-config", "--config", str(config))
    named = [ln for ln in checked.stderr.splitlines() if ln.startswith("forecaster.finetune.cron")]
    assert checked.returncode == 2 and len(named) == 1 and problem in named[0], output(checked)
    served = run_cli("forecaster", "serve", "--config", str(config), timeout_s=60)
    assert served.returncode == 2 and problem in served.stderr and "Traceback" not in output(served)


def test_when_the_registry_is_read_only_then_promote_and_finetune_say_so_in_one_line_before_any_training(
    influx: InfluxClient, influx_server: InfluxServer, tiny_chronos_dir: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    fill(influx)
    registry = Registry(tmp_path / "models")
    add_version(registry, tiny_adapter, "ft-a", active=True)
    add_version(registry, tiny_adapter, "ft-b")
    config = config_for(tmp_path, influx_server.url, tiny_chronos_dir)
    base = [sys.executable, "-m", "forecaster"]
    for args, expected in (
        (["promote", "ft-b"], "cannot promote: registry"),
        (["finetune", "--now"], "fine-tune not started: registry"),
    ):
        cmd = read_only_command([*base, *args, "--config", str(config)], registry.root)
        result = subprocess.run(
            cmd, check=False, capture_output=True, text=True, env=python_env(), cwd=REPO_ROOT, timeout=120
        )
        text = output(result)
        assert result.returncode == 1 and expected in text and "not writable" in text, text[-3000:]
        assert "Traceback" not in text and "finetune_started" not in text
    assert registry.active_name() == "ft-a" and [v.version for v in registry.versions()] == ["ft-a", "ft-b"]


def test_when_history_or_an_environment_override_is_malformed_then_one_line_names_it(
    tiny_chronos_dir: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    registry = Registry(tmp_path / "models")
    add_version(registry, tiny_adapter, "ft-a", active=True)
    add_version(registry, tiny_adapter, "ft-b")
    (registry.root / "history.json").write_text('["", "ft-')
    config = config_for(tmp_path, "http://127.0.0.1:9", tiny_chronos_dir)

    rolled = run_cli("forecaster", "rollback", "--config", str(config))
    assert rolled.returncode == 1 and "history.json is damaged" in rolled.stdout and "Traceback" not in output(rolled)
    promoted = run_cli("forecaster", "promote", "ft-b", "--config", str(config))
    assert promoted.returncode == 0 and "Traceback" not in output(promoted), output(promoted)
    assert registry.active_name() == "ft-b" and list(registry.root.glob("history.json.damaged-*"))

    env = {**python_env(), "BESS_FORECASTER__TASKS": '[{"name": "x"'}
    listed = run_cli("forecaster", "models", "--config", str(config), env=env)
    assert listed.returncode == 2 and "Traceback" not in output(listed)
    assert listed.stderr.strip().splitlines()[0].startswith("BESS_FORECASTER__TASKS: not valid JSON")

    env = {**python_env(), "BESS_FORECASTR__NUM_THREADS": "3"}
    checked = run_cli("forecaster", "check-config", "--config", str(config), env=env)
    assert "warning: BESS_FORECASTR__NUM_THREADS: ignored, 'forecastr' is not a config section" in checked.stderr
    listed = run_cli("forecaster", "models", "--config", str(config), env=env)
    warned = [json.loads(ln) for ln in listed.stdout.splitlines() if "env_ignored" in ln]
    assert listed.returncode == 0 and len(warned) == 1 and "BESS_FORECASTR__NUM_THREADS" in str(warned[0]["problem"])

    far = run_cli("forecaster", "predict", "--config", str(config), "--at", "9999-12-31T00:00:00")
    assert far.returncode == 2 and "Traceback" not in output(far)
    assert (
        far.stdout.strip()
        == "--at: '9999-12-31T00:00:00' is outside the times InfluxDB can store (1677-09-22 .. 2262-04-11)"
    )


def test_when_the_previous_version_was_pruned_then_rollback_goes_back_to_one_that_exists(
    tiny_chronos_dir: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    registry = Registry(tmp_path / "models")
    for name in ("ft-a", "ft-b", "ft-c"):
        add_version(registry, tiny_adapter, name, active=True)  # history: base, ft-a, ft-b
    assert registry.prune(keep=1) == ["ft-a", "ft-b"]
    config = config_for(tmp_path, "http://127.0.0.1:9", tiny_chronos_dir)
    rolled = run_cli("forecaster", "rollback", "--config", str(config))
    assert rolled.returncode == 0, output(rolled)
    assert (
        "skipped (pruned or set aside): ft-b, ft-a" in rolled.stdout
        and "active: none (base model only)" in rolled.stdout
    )
    assert registry.active_name() is None
    again = run_cli("forecaster", "rollback", "--config", str(config))
    assert again.returncode == 1 and "no previous active version" in again.stdout


def test_when_a_finetune_has_no_data_then_no_version_is_registered_and_stale_scratch_is_removed(
    influx: InfluxClient, influx_server: InfluxServer, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    registry = Registry(tmp_path / "models")
    stale = registry.root / "finetune-k1ll3d" / "checkpoint-2"  # what a killed fine-tune leaves behind
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"\0" * 4096)
    config = config_for(tmp_path, influx_server.url, tiny_chronos_dir)
    result = run_cli("forecaster", "finetune", "--now", "--config", str(config), timeout_s=300)
    assert result.returncode == 1 and "Traceback" not in output(result), output(result)[-3000:]
    assert "fine-tune not started: only 0 of 576 training steps of battery_power_w hold data" in result.stdout
    assert registry.versions() == [] and not (registry.root / "finetune-k1ll3d").exists()


def test_when_a_task_context_is_longer_than_the_model_can_use_then_predict_says_so_at_start(
    influx: InfluxClient, influx_server: InfluxServer, tiny_chronos_dir: Path, tmp_path: Path
) -> None:
    short = tmp_path / "tiny-256"
    shutil.copytree(tiny_chronos_dir, short)
    cfg = json.loads((short / "config.json").read_text())
    cfg["chronos_config"]["context_length"] = 256
    (short / "config.json").write_text(json.dumps(cfg))
    fill(influx)
    config = config_for(tmp_path, influx_server.url, short)
    result = run_cli("forecaster", "predict", "--config", str(config), "--at", AT)
    assert result.returncode == 0, output(result)[-3000:]
    assert "task t5m: context_steps 576 is longer than the model's limit 256" in result.stderr
