"""`bess-forecaster models`: list the fine-tuned versions in the registry, the broken ones marked."""

from __future__ import annotations

import argparse

from forecaster.commands.common import add_config, load
from forecaster.registry import Registry, Version

HELP = "List fine-tuned versions (active marked with *, broken ones with their reason), data range and gate scores"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments."""
    add_config(parser)


def _fmt(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, float) else "-"


def _line(mark: str, v: Version, problem: str | None) -> str:
    m = v.manifest
    gate = m.get("gate", {}) if isinstance(m.get("gate"), dict) else {}
    cand = gate.get("candidate_mae_w", {}).get("all")
    inc = gate.get("incumbent_mae_w", {}).get("all")
    data = m.get("data", {}) if isinstance(m.get("data"), dict) else {}
    line = (
        f"{mark} {v.version:<22} {m.get('mode', '?'):<5} {m.get('num_steps', '?'):>5} "
        f"{data.get('to', '?'):<26} {_fmt(cand) + ' / ' + _fmt(inc):<22} "
        f"{'yes' if gate.get('promote') else 'no'}"
    )
    return f"{line}  BROKEN: {problem}" if problem else line


def main(args: argparse.Namespace) -> int:
    """Print one line per version; exit 1 when the active version is broken (forecasts fall back)."""
    settings = load(args)
    if settings is None:
        return 2
    registry = Registry(settings.forecaster.registry_dir)
    active = registry.active_name()
    versions, broken = registry.scan()
    if not versions and not broken and active is None:
        print(f"no fine-tuned versions in {registry.root}; forecasts use the base model only")
        return 0
    status = 0
    print(f"  {'version':<22} {'mode':<5} {'steps':>5} {'data to':<26} {'gate MAE cand/inc (W)':<22} promoted")
    rows: list[tuple[str, str]] = []
    for v in versions:
        # Only the active version's adapter is hashed (the service checks it at load the same way).
        problem = registry.adapter_problem(v) if v.version == active else None
        rows.append((v.version, _line("*" if v.version == active else " ", v, problem)))
        status = 1 if problem else status
    for b in broken:
        mark = "*" if b.version == active else " "
        rows.append((b.version, f"{mark} {b.version:<22} BROKEN: {b.reason}"))
        status = 1 if b.version == active else status
    known = {name for name, _ in rows}
    if active is not None and active not in known:
        rows.append((active, f"* {active:<22} BROKEN: the active version's folder is missing"))
        status = 1
    for _, line in sorted(rows):
        print(line)
    if active is None:
        print("active: none (base model only)")
    elif status:
        print(
            f"active {active} is broken: `finetuned` is served by the persistence fallback; "
            f"promote another version or roll back"
        )
    return status
