"""`bess-collector dead-letters list|show|replay|purge --config FILE`: lines InfluxDB refused as bad data.

list:   how many entries and lines, grouped by reason.
show:   the entries (index, time, status, reason, lines); --index picks some.
replay: put the entries' lines back into the durable buffer (the running collector, or the next start,
        writes them); lines InfluxDB refuses again are set aside again as new entries.
purge:  delete entries for good.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from collector.buffer import DiskBuffer
from collector.commands.check_config import print_problems
from collector.common.config import Settings, load_settings
from collector.common.errors import ConfigError
from collector.deadletters import DeadLetter, DeadLetters

HELP = "List, show, replay or purge the lines InfluxDB rejected as bad data"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of dead-letters: an action, then --config and optional --index."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, required=True, help="the TOML config file")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", parents=[common], help="count entries and lines per reason")
    for name, text in (
        ("show", "print entries"),
        ("replay", "re-submit entries through the buffer"),
        ("purge", "delete entries"),
    ):
        sub = actions.add_parser(name, parents=[common], help=text)
        sub.add_argument(
            "--index",
            type=int,
            action="append",
            default=None,
            help="entry index as shown by `show` (repeatable); default: all",
        )


def _show(entries: list[tuple[int, DeadLetter]]) -> None:
    for index, entry in entries:
        print(f"[{index}] {entry.to_json()[10:34]} HTTP {entry.status}: {entry.reason}")
        for line in entry.lines:
            print(f"    {line}")


def _run(action: str, settings: Settings, indices: set[int] | None) -> int:
    c = settings.collector
    dead = DeadLetters(c.buffer_dir)
    entries = dead.entries()
    if indices is not None and (unknown := sorted(i for i in indices if not 0 <= i < len(entries))):
        print_problems([f"--index {i}: no such entry (there are {len(entries)})" for i in unknown])
        return 2
    if action == "list":
        lines = sum(len(e.lines) for e in entries)
        print(f"{len(entries)} entries, {lines} lines set aside in {dead.path}")
        for reason, count in sorted(dead.summary().items(), key=lambda kv: -kv[1]):
            print(f"  {count:6d} lines  {reason}")
    elif action == "show":
        _show([(i, e) for i, e in enumerate(entries) if indices is None or i in indices])
    elif action == "replay":
        buffer = DiskBuffer(c.buffer_dir, int(c.buffer_max_mb * 1024 * 1024), c.buffer_sync)
        try:
            moved = dead.replay_into(buffer.append, indices)
        finally:
            buffer.close()
        print(
            f"replayed {len(moved)} entries ({sum(len(e.lines) for e in moved)} lines) into the buffer; "
            f"lines InfluxDB rejects again will be set aside again"
        )
    else:
        removed = dead.remove(indices)
        print(f"purged {len(removed)} entries ({sum(len(e.lines) for e in removed)} lines)")
    return 0


def main(args: argparse.Namespace) -> int:
    """Exit 0 on success, 2 on bad config or an unknown index."""
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print_problems(exc.problems)
        return 2
    indices = set(args.index) if getattr(args, "index", None) else None
    return _run(args.action, settings, indices)
