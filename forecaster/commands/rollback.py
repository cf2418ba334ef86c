"""`bess-forecaster rollback`: re-activate the previously active version."""

from __future__ import annotations

import argparse

from forecaster.commands.common import add_config, load
from forecaster.registry import Registry, RegistryError

HELP = "Re-activate the previously active fine-tuned version (or the base model)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments."""
    add_config(parser)


def main(args: argparse.Namespace) -> int:
    """0 done; 1 nothing to roll back to, or the registry cannot be read or written."""
    settings = load(args)
    if settings is None:
        return 2
    registry = Registry(settings.forecaster.registry_dir)
    try:
        version, skipped = registry.rollback()
    except KeyError as exc:
        print(f"cannot roll back: {exc.args[0]}; promote a version by name (see `bess-forecaster models`)")
        return 1
    except RegistryError as exc:
        print(f"cannot roll back: {exc}")
        return 1
    if skipped:
        print(f"skipped (pruned or set aside): {', '.join(skipped)}")
    print(f"active: {version or 'none (base model only)'}")
    return 0
