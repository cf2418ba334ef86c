"""Dead letters: line groups InfluxDB refused as bad data (HTTP 400/422, or a single line too large).

A JSON-lines file `dead_letters.jsonl` in the buffer directory, one entry per rejected line group:
{"time": ISO-8601 UTC, "time_ns": int, "status": int, "reason": str, "lines": [str, ...]}.
Appends are fsync'ed before the writer acks the batch, so a rejected line is always either in the buffer or
here. Every read-modify-write holds an exclusive lock on `dead_letters.lock`, so the running collector and
the `bess-collector dead-letters` command can share the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bess_common.timefmt import iso_utc

FILE_NAME = "dead_letters.jsonl"
LOCK_NAME = "dead_letters.lock"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected line group."""

    time_ns: int
    status: int | None
    reason: str
    lines: list[str]

    def to_json(self) -> str:
        """One JSON line (without newline)."""
        stamp = iso_utc(self.time_ns, 3)
        return json.dumps(
            {"time": stamp, "time_ns": self.time_ns, "status": self.status, "reason": self.reason, "lines": self.lines},
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> DeadLetter:
        """Parse one line written by to_json."""
        data = json.loads(text)
        return cls(int(data["time_ns"]), data.get("status"), str(data.get("reason", "")), list(data["lines"]))


def short_reason(reason: str) -> str:
    """The reason without point-specific detail (quoted names, line text, counts), for grouping."""
    text = re.sub(r"'[^']*'", "'…'", reason)
    text = re.sub(r'"[^"]*"', '"…"', text)
    text = re.sub(r"\s*dropped=\d+", "", text)
    return text[:200]


class DeadLetters:
    """The dead-letter file of one buffer directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / FILE_NAME
        self._lock_path = self.directory / LOCK_NAME

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def add(self, entries: list[DeadLetter]) -> None:
        """Append entries durably (fsync) before the caller drops the lines from the buffer."""
        if not entries:
            return
        text = "".join(entry.to_json() + "\n" for entry in entries)
        with self._locked(), self.path.open("a+", encoding="utf-8") as out:
            if out.tell() > 0:
                out.seek(out.tell() - 1)
                if out.read(1) != "\n":
                    text = "\n" + text  # a torn last line (crash mid-append) must not swallow this entry
            out.write(text)
            out.flush()
            os.fsync(out.fileno())

    def entries(self) -> list[DeadLetter]:
        """All entries, oldest first; a damaged line (e.g. torn by a crash) is skipped."""
        if not self.path.exists():
            return []  # reading creates nothing
        with self._locked():
            return self._read()

    def _read(self) -> list[DeadLetter]:
        if not self.path.exists():
            return []
        found = []
        for text in self.path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                found.append(DeadLetter.from_json(text))
        return found

    def summary(self) -> dict[str, int]:
        """Rejected line count per (shortened) reason."""
        counts: Counter[str] = Counter()
        for entry in self.entries():
            counts[f"HTTP {entry.status}: {short_reason(entry.reason)}"] += len(entry.lines)
        return dict(counts)

    def remove(self, indices: set[int] | None = None) -> list[DeadLetter]:
        """Delete the entries at `indices` (0-based, as listed by `entries`; None = all); return them."""
        return self.replay_into(None, indices)

    def replay_into(
        self, append: Callable[[list[str]], None] | None, indices: set[int] | None = None
    ) -> list[DeadLetter]:
        """Hand the chosen entries' lines to `append` (e.g. DiskBuffer.append), then delete the entries.

        The lines are durable in the buffer before they leave this file; if InfluxDB rejects them again,
        the writer sets them aside here again as new entries.
        """
        with self._locked():
            current = self._read()
            chosen = [e for i, e in enumerate(current) if indices is None or i in indices]
            kept = [e for i, e in enumerate(current) if indices is not None and i not in indices]
            if append is not None:
                for entry in chosen:
                    append(entry.lines)
            self._rewrite(kept)
        return chosen

    def _rewrite(self, entries: list[DeadLetter]) -> None:
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            out.write("".join(entry.to_json() + "\n" for entry in entries))
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
