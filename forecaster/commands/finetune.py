"""`bess-forecaster finetune [--now]`: re-fine-tune on recent site data, gate, promote when better."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from bess_common.errors import FatalError, RejectedError, RetryableError
from forecaster.commands.common import add_config, load, runtime
from forecaster.jobs import run_finetune
from forecaster.registry import RegistryLocked
from forecaster.scheduler import previous_fire

HELP = "Fine-tune (LoRA by default) when due by the cron schedule, or at once with --now; promote only if better"


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


def main(args: argparse.Namespace) -> int:
    """0 done (promoted or not) or not due; 1 runtime failure or lock held; 2 bad config."""
    settings = load(args)
    if settings is None:
        return 2
    fs = settings.forecaster
    rt = runtime(settings, with_models=False)
    if not args.now:
        created = [str(v.manifest.get("created_at", "")) for v in rt.registry.versions()]
        if not is_due(fs.finetune.cron, created, datetime.now(UTC)):
            print(f"not due (schedule {fs.finetune.cron!r}); use --now to fine-tune at once")
            return 0
    rt = runtime(settings)
    if rt.models is None:
        return 1  # the one-line reason was printed by runtime()
    try:
        result = run_finetune(fs, rt.store, rt.registry, rt.models.pipeline, fs.base_model, tty=sys.stderr.isatty())
    except RegistryLocked as exc:
        print(str(exc))
        return 1
    except (RetryableError, RejectedError, FatalError) as exc:
        print(f"fine-tune failed: {exc}")
        return 1
    verdict = "promoted (now active)" if result.promoted else "kept, not promoted"
    print(f"{result.version}: {verdict}: {'; '.join(result.reasons)}")
    return 0
