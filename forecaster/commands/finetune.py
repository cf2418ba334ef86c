"""`bess-forecaster finetune [--now]`: re-fine-tune on recent site data, gate, promote when better."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from bess_common.errors import FatalError, RejectedError, RetryableError
from forecaster.commands.common import add_config, load, runtime
from forecaster.config import ForecasterSettings, Settings
from forecaster.finetune_job import FinetuneRefused, run_finetune
from forecaster.gbm import GbmUnavailable
from forecaster.gbm_job import gbm_registry, run_gbm_retrain
from forecaster.parentwatch import die_with_parent
from forecaster.registry import Registry, RegistryError, RegistryLocked
from forecaster.scheduler import previous_fire
from forecaster.store import ForecastStore

HELP = (
    "Fine-tune (LoRA by default) and re-train the gradient-boosting model when due by the cron schedule, or at"
    " once with --now; promote each only if better"
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments."""
    add_config(parser)
    parser.add_argument("--now", action="store_true", help="Run now even if not due by the schedule")


def is_due(cron: str, versions_created: list[str], now: datetime) -> bool:
    """Due when no version was created since the schedule's latest fire time."""
    if not cron.strip():
        return False
    fired = previous_fire(cron, now)
    if fired is None:
        return False
    created = [datetime.fromisoformat(c) for c in versions_created if c]
    return not any(c >= fired for c in created)


def retrain_gbm(fs: ForecasterSettings, store: ForecastStore) -> bool:
    """Re-train, gate and maybe promote the gradient-boosting model; prints the verdict; False on failure."""
    try:
        result = run_gbm_retrain(fs, store, gbm_registry(fs))
    except RegistryLocked as exc:
        print(f"gradient boosting: {exc}")
        return False
    except (GbmUnavailable, RetryableError, RejectedError, FatalError) as exc:
        print(f"gradient boosting: re-train failed: {exc}")
        return False
    verdict = "promoted (now active)" if result.promoted else "kept, not promoted"
    print(f"{result.version}: {verdict}: {'; '.join(result.reasons)}")
    return True


def _run(settings: Settings) -> int:
    fs = settings.forecaster
    rt = runtime(settings)
    if isinstance(rt, int):
        return rt
    retrain_gbm(fs, rt.store)  # the site-trained gradient-boosting model follows the same schedule and gate
    if rt.models is None:
        return 1  # the one-line reason was printed by runtime()
    try:
        result = run_finetune(fs, rt.store, rt.registry, rt.models.pipeline, fs.base_model, tty=sys.stderr.isatty())
    except (RegistryLocked, RegistryError) as exc:
        print(str(exc))
        return 1
    except FinetuneRefused as exc:
        print(f"fine-tune not started: {exc}")
        return 1
    except (RetryableError, RejectedError, FatalError) as exc:
        print(f"fine-tune failed: {exc}")
        return 1
    verdict = "promoted (now active)" if result.promoted else "kept, not promoted"
    print(f"{result.version}: {verdict}: {'; '.join(result.reasons)}")
    return 0


def main(args: argparse.Namespace) -> int:
    """0 done (promoted or not) or not due; 1 runtime failure, lock held or nothing to train on; 2 bad config."""
    settings = load(args)
    if settings is None:
        return 2
    die_with_parent()
    fs = settings.forecaster
    registry = Registry(fs.registry_dir)
    if not args.now:
        created = [str(v.manifest.get("created_at", "")) for v in registry.versions()]
        if not is_due(fs.finetune.cron, created, datetime.now(UTC)):
            print(f"not due (schedule {fs.finetune.cron!r}); use --now to fine-tune at once")
            return 0
    problem = registry.writable_problem()  # before training for the whole run, not at registration
    if problem:
        print(f"fine-tune not started: {problem}")
        return 1
    return _run(settings)
