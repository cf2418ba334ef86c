"""`bess-collector dead-letters list|show|replay|purge --config FILE [--buffer-dir D]`: lines InfluxDB
refused as bad data.

list:   how many entries and lines, grouped by reason; without --buffer-dir it also names every import's
        buffer directory (`<buffer_dir>/import-<site>`) that holds dead letters.
show:   the entries (index, time, status, reason, lines); --index picks some.
replay: put the entries' lines back into the durable buffer (the running collector, or the next start,
        writes them); lines InfluxDB refuses again are set aside again as new entries. An import's buffer
        has no service draining it, so for one the command writes the lines itself.
purge:  delete entries for good.

--buffer-dir picks the directory (default: the collector's `buffer_dir`); `bess-collector import` prints
the one to use when it set lines aside.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bess_common.errors import ConfigError
from bess_common.influx import InfluxClient
from collector.buffer import DiskBuffer
from collector.commands.check_config import print_problems
from collector.config import Settings, load_settings
from collector.deadletters import DeadLetter, DeadLetters
from collector.sink import Writer

HELP = "List, show, replay or purge the lines InfluxDB rejected as bad data"
IMPORT_PREFIX = "import-"  # `bess-collector import` buffers under <buffer_dir>/import-<site> by default
REPLAY_DEADLINE_S = 120.0


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of dead-letters: an action, then --config, optional --buffer-dir and --index."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, required=True, help="the TOML config file")
    common.add_argument(
        "--buffer-dir",
        type=Path,
        default=None,
        help="the buffer directory whose dead letters to use (default: the collector's; an import prints its own)",
    )
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


def import_dirs_with_letters(buffer_dir: Path) -> list[tuple[Path, int, int]]:
    """(directory, entries, lines) of every import buffer under `buffer_dir` that holds dead letters."""
    found: list[tuple[Path, int, int]] = []
    if not buffer_dir.is_dir():
        return found
    for directory in sorted(buffer_dir.glob(IMPORT_PREFIX + "*")):
        entries = DeadLetters(directory).entries() if directory.is_dir() else []
        if entries:
            found.append((directory, len(entries), sum(len(e.lines) for e in entries)))
    return found


def _list(dead: DeadLetters, settings: Settings, chosen: bool) -> None:
    entries = dead.entries()
    print(f"{len(entries)} entries, {sum(len(e.lines) for e in entries)} lines set aside in {dead.path}")
    for reason, count in sorted(dead.summary().items(), key=lambda kv: -kv[1]):
        print(f"  {count:6d} lines  {reason}")
    if chosen:
        return
    for directory, n_entries, n_lines in import_dirs_with_letters(Path(settings.collector.buffer_dir)):
        print(f"also {n_entries} entries, {n_lines} lines set aside by an import: add --buffer-dir {directory}")


def _replay(dead: DeadLetters, settings: Settings, indices: set[int] | None, own_buffer: bool) -> int:
    c = settings.collector
    buffer = DiskBuffer(dead.directory, int(c.buffer_max_mb * 1024 * 1024), c.buffer_sync)
    try:
        moved = dead.replay_into(buffer.append, indices)
        summary = f"replayed {len(moved)} entries ({sum(len(e.lines) for e in moved)} lines) into the buffer"
        if own_buffer:
            print(f"{summary}; lines InfluxDB rejects again will be set aside again")
            return 0
        return _write_import_buffer(buffer, dead, settings, summary)
    finally:
        buffer.close()


def _write_import_buffer(buffer: DiskBuffer, dead: DeadLetters, settings: Settings, summary: str) -> int:
    """An import's buffer has no service draining it: write it now (1 when InfluxDB does not take it)."""
    c = settings.collector
    client = InfluxClient(settings.influx)
    try:
        writer = Writer(buffer, client, dead, batch_max_lines=c.batch_max_lines, retry_max_s=c.retry_max_s)
        empty = writer.drain(REPLAY_DEADLINE_S)
        stats = writer.stats()
    finally:
        client.close()
    print(f"{summary}; {stats.written} lines written, {stats.rejected} rejected again (set aside again)")
    if not empty:
        print(f"error: InfluxDB did not take {buffer.depth()} lines; they stay in {buffer.directory}: rerun replay")
        return 1
    return 0 if stats.rejected == 0 else 3


def _run(action: str, settings: Settings, indices: set[int] | None, buffer_dir: Path | None) -> int:
    own_buffer = buffer_dir is None or buffer_dir.resolve() == Path(settings.collector.buffer_dir).resolve()
    dead = DeadLetters(buffer_dir if buffer_dir is not None else Path(settings.collector.buffer_dir))
    if buffer_dir is not None and not buffer_dir.is_dir():
        print_problems([f"--buffer-dir {buffer_dir}: no such directory"])
        return 2
    entries = dead.entries()
    if indices is not None and (unknown := sorted(i for i in indices if not 0 <= i < len(entries))):
        print_problems([f"--index {i}: no such entry (there are {len(entries)})" for i in unknown])
        return 2
    if action == "list":
        _list(dead, settings, chosen=buffer_dir is not None)
    elif action == "show":
        _show([(i, e) for i, e in enumerate(entries) if indices is None or i in indices])
    elif action == "replay":
        return _replay(dead, settings, indices, own_buffer)
    else:
        removed = dead.remove(indices)
        print(f"purged {len(removed)} entries ({sum(len(e.lines) for e in removed)} lines)")
    return 0


def main(args: argparse.Namespace) -> int:
    """Exit 0 on success, 2 on bad config, an unknown index or directory; replay of an import's letters:
    1 when InfluxDB did not take them, 3 when it rejected some again."""
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print_problems(exc.problems)
        return 2
    indices = set(args.index) if getattr(args, "index", None) else None
    return _run(args.action, settings, indices, getattr(args, "buffer_dir", None))
