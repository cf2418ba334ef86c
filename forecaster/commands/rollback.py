"""`bess-forecaster rollback`: re-activate the previously active version."""

from __future__ import annotations

import argparse

from forecaster.commands.common import add_config, load
from forecaster.registry import Registry

HELP = "Re-activate the previously active fine-tuned version (or the base model)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments."""
    add_config(parser)


def main(args: argparse.Namespace) -> int:
    """0 done; 1 nothing to roll back to."""
    settings = load(args)
    if settings is None:
        return 2
    registry = Registry(settings.forecaster.registry_dir)
    try:
        version = registry.rollback()
    except KeyError as exc:
        print(f"cannot roll back: {exc.args[0]}")
        return 1
    print(f"active: {version or 'none (base model only)'}")
    return 0
