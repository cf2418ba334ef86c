"""`bess-forecaster models`: list the fine-tuned versions in the registry."""

from __future__ import annotations

import argparse

from forecaster.commands.common import add_config, load
from forecaster.registry import Registry

HELP = "List fine-tuned versions (active marked with *), their data range and gate scores"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments."""
    add_config(parser)


def _fmt(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, float) else "-"


def main(args: argparse.Namespace) -> int:
    """Print one line per version."""
    settings = load(args)
    if settings is None:
        return 2
    registry = Registry(settings.forecaster.registry_dir)
    active = registry.active()
    versions = registry.versions()
    if not versions:
        print(f"no fine-tuned versions in {registry.root}; forecasts use the base model only")
        return 0
    print(f"  {'version':<22} {'mode':<5} {'steps':>5} {'data to':<26} {'gate MAE cand/inc (W)':<22} promoted")
    for v in versions:
        m = v.manifest
        gate = m.get("gate", {})
        cand = gate.get("candidate_mae_w", {}).get("all")
        inc = gate.get("incumbent_mae_w", {}).get("all")
        mark = "*" if active and active.version == v.version else " "
        print(
            f"{mark} {v.version:<22} {m.get('mode', '?'):<5} {m.get('num_steps', '?'):>5} "
            f"{m.get('data', {}).get('to', '?'):<26} {_fmt(cand) + ' / ' + _fmt(inc):<22} "
            f"{'yes' if gate.get('promote') else 'no'}"
        )
    if active is None:
        print("active: none (base model only)")
    return 0
