"""`bess-forecaster promote VERSION`: make a version active by hand (bypasses the gate)."""

from __future__ import annotations

import argparse

from forecaster.commands.common import add_config, load
from forecaster.registry import Registry, RegistryError

HELP = "Make VERSION the active fine-tuned model (a running serve picks it up next cycle)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments."""
    add_config(parser)
    parser.add_argument("version", help="Version id (see `bess-forecaster models`); 'base' = no adapter")


def main(args: argparse.Namespace) -> int:
    """0 done; 1 unknown version or a registry that cannot be written."""
    settings = load(args)
    if settings is None:
        return 2
    registry = Registry(settings.forecaster.registry_dir)
    version = None if args.version == "base" else args.version
    try:
        registry.set_active(version)
    except KeyError:
        print(f"unknown version {args.version!r}; see `bess-forecaster models`")
        return 1
    except RegistryError as exc:
        print(f"cannot promote: {exc}")
        return 1
    print(f"active: {version or 'none (base model only)'}")
    return 0
