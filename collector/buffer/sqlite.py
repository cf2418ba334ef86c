"""DiskBuffer: a bounded, durable FIFO of line-protocol lines in SQLite (WAL mode).

Guarantees (see docs/reliability.md):
- `append` returns only after its transaction committed (synchronous=FULL: survives power loss;
  NORMAL: survives a process kill). One transaction per call.
- `peek` returns the oldest lines in append order; `ack` deletes exactly the lines of a batch.
- Size limit: the database file, its WAL and WAL index stay within `max_bytes`. When new lines would not fit, the
  OLDEST lines are deleted (drop-oldest policy), counted in `dropped`, and logged once per episode.
  Freed pages are reused (no VACUUM at run time), so the file does not grow past the limit.
- A corrupt database file is moved aside (`buffer.db.corrupt-<time>`) with an actionable log line and a
  fresh buffer is started, so the daemon never crash-loops on it.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bess_common.logs import get_logger

DB_NAME = "buffer.db"
MIN_MAX_BYTES = 128 * 1024
_SHM_RESERVE = 64 * 1024  # the WAL index file (-shm) is on disk too
_LOW_WATER = 0.9  # after an eviction the data fills at most this share of its budget
_DROP_LOG_PERIOD_S = 300.0
_CORRUPT_CODES = {getattr(sqlite3, "SQLITE_CORRUPT", 11), getattr(sqlite3, "SQLITE_NOTADB", 26)}


@dataclass(frozen=True, slots=True)
class Batch:
    """The oldest lines of the buffer, as handed to the writer; ack it once it is settled."""

    ids: tuple[int, ...]
    lines: list[str]

    def __len__(self) -> int:
        return len(self.lines)


@dataclass(frozen=True, slots=True)
class BufferStats:
    """Counters since this process opened the buffer, plus the current depth and size."""

    depth: int
    size_bytes: int
    appended: int
    acked: int
    dropped: int


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and (code & 0xFF) in _CORRUPT_CODES:
        return True
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def _is_full(exc: sqlite3.OperationalError) -> bool:
    return "full" in str(exc).lower()


class DiskBuffer:
    """Durable FIFO of line-protocol lines; thread-safe; several processes may share the file."""

    def __init__(
        self, directory: Path, max_bytes: int, sync: str = "full", wall_ns: Callable[[], int] = time.time_ns
    ) -> None:
        if max_bytes < MIN_MAX_BYTES:
            raise ValueError(f"buffer size limit must be at least {MIN_MAX_BYTES} bytes, got {max_bytes}")
        if sync not in ("full", "normal"):
            raise ValueError(f"sync must be 'full' or 'normal', got {sync!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / DB_NAME
        self.max_bytes = int(max_bytes)
        self._wal_budget = max(32 * 1024, min(self.max_bytes // 8, 8 * 1024 * 1024))
        self._sync = sync
        self._wall_ns = wall_ns
        self._lock = threading.Lock()
        self._log = get_logger("buffer")
        self._appended = self._acked = self._dropped = 0
        self._episode_dropped = 0
        self._episode_logged_mono: float | None = None
        self._conn = self._open_or_recover()

    # -- opening ------------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._sync.upper()}")
            check = conn.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check[0] if check else 'no answer'} (malformed)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS lines (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " added_ns INTEGER NOT NULL, line TEXT NOT NULL)"
            )
            page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            conn.execute(f"PRAGMA journal_size_limit={self._wal_budget}")
            conn.execute(f"PRAGMA wal_autocheckpoint={max(4, self._wal_budget // page_size // 2)}")
        except BaseException:
            conn.close()
            raise
        self._page_size = page_size
        self._max_pages = max(8, (self.max_bytes - self._wal_budget - _SHM_RESERVE) // page_size)
        self._shrink_to_limit(conn)
        conn.execute(f"PRAGMA max_page_count={self._max_pages}")
        return conn

    def _open_or_recover(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if not _is_corrupt(exc):
                raise
            self._move_aside(exc)
            return self._connect()

    def _move_aside(self, exc: Exception) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.path.with_name(f"{DB_NAME}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(self.path) + suffix)
            if part.exists():
                part.rename(Path(str(target) + suffix))
        self._log.error(
            "buffer_corrupt_moved_aside",
            error=str(exc),
            moved_to=str(target),
            action=f"a fresh buffer was started; the old file may hold unsent data: try "
            f"`sqlite3 {target} .recover` to salvage it, then delete {target}*",
        )

    def _shrink_to_limit(self, conn: sqlite3.Connection) -> None:
        """An existing file larger than the (possibly lowered) limit: drop oldest, then VACUUM once."""
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        if pages <= self._max_pages:
            return
        self._note_dropped(self._evict(conn, need_bytes=0))
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._log.warning("buffer_shrunk_to_limit", max_bytes=self.max_bytes, dropped=self._dropped)

    # -- size policy --------------------------------------------------------------------------------------
    def _used_bytes(self, conn: sqlite3.Connection) -> int:
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * self._page_size

    def _evict(self, conn: sqlite3.Connection, need_bytes: int, min_rows: int = 0) -> int:
        """Delete the oldest rows so that `need_bytes` more fit under the low-water mark; return the count.

        The caller counts them once its transaction committed."""
        lo, hi = conn.execute("SELECT min(id), max(id) FROM lines").fetchone()
        if lo is None:
            return 0
        depth = hi - lo + 1
        used = self._used_bytes(conn)
        target = _LOW_WATER * self._max_pages * self._page_size
        excess = used + need_bytes - target
        rows = min_rows
        if excess > 0:
            rows = max(rows, math.ceil(excess / max(1.0, used / depth)))
        rows = min(rows, depth)
        if rows <= 0:
            return 0
        cur = conn.execute("DELETE FROM lines WHERE id < ?", (lo + rows,))
        return max(0, cur.rowcount)

    def _note_dropped(self, count: int) -> None:
        if count <= 0:
            return
        self._dropped += count
        self._episode_dropped += count
        now = time.monotonic()
        if self._episode_logged_mono is None:
            self._episode_logged_mono = now
            self._log.warning(
                "buffer_full_dropping_oldest", dropped=count, max_bytes=self.max_bytes, policy="drop-oldest"
            )
        elif now - self._episode_logged_mono >= _DROP_LOG_PERIOD_S:
            self._episode_logged_mono = now
            self._log.warning("buffer_still_full", dropped_in_episode=self._episode_dropped)

    def _end_drop_episode(self) -> None:
        if self._episode_logged_mono is not None:
            self._log.warning("buffer_drop_episode_ended", dropped_in_episode=self._episode_dropped)
            self._episode_logged_mono = None
            self._episode_dropped = 0

    def _checkpoint_if_large(self) -> None:
        wal = Path(str(self.path) + "-wal")
        if wal.exists() and wal.stat().st_size > self._wal_budget:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- public API ---------------------------------------------------------------------------------------
    def append(self, lines: list[str]) -> None:
        """Store lines durably (one transaction); returns once committed. Drops the oldest lines if full."""
        if not lines:
            return
        now_ns = self._wall_ns()
        rows = [(now_ns, line) for line in lines]
        need = sum(len(line) + 24 for line in lines)
        with self._lock:
            self._appended += self._guard(lambda: self._append_locked(rows, need))

    def _append_locked(self, rows: list[tuple[int, str]], need: int) -> int:
        """Evict (if needed) and insert in ONE transaction; return how many rows were stored.

        The page cap (max_page_count) is the hard limit: SQLITE_FULL rolls back, and the retry evicts more.
        """
        conn = self._conn
        extra = 0
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                dropped = 0
                if extra or self._used_bytes(conn) + need > self._max_pages * self._page_size:
                    dropped = self._evict(conn, need, min_rows=extra)
                conn.executemany("INSERT INTO lines (added_ns, line) VALUES (?, ?)", rows)
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if not _is_full(exc):
                    raise
                if extra >= self._depth(conn):  # evicting everything did not help: this append cannot fit
                    self._note_dropped(len(rows))
                    return 0
                extra = max(2 * extra, len(rows), 64)
                continue
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._note_dropped(dropped)
            self._checkpoint_if_large()
            return len(rows)

    def peek(self, max_lines: int, after_id: int | None = None) -> Batch:
        """The oldest `max_lines` lines (fewer when the buffer holds fewer), oldest first; with `after_id`,
        the oldest lines after that id (the batch behind one still in flight)."""
        lower = -1 if after_id is None else after_id
        with self._lock:
            rows = self._guard(
                lambda: self._conn.execute(
                    "SELECT id, line FROM lines WHERE id > ? ORDER BY id LIMIT ?", (lower, max_lines)
                ).fetchall()
            )
        return Batch(tuple(r[0] for r in rows), [r[1] for r in rows])

    def ack(self, batch: Batch) -> None:
        """Delete the lines of a settled batch (written or set aside); idempotent."""
        if not batch.ids:
            return
        with self._lock:
            cur = self._guard(
                lambda: self._conn.execute("DELETE FROM lines WHERE id >= ? AND id <= ?", (batch.ids[0], batch.ids[-1]))
            )
            self._acked += max(0, cur.rowcount)
            self._end_drop_episode()

    def depth(self) -> int:
        """How many lines wait to be written."""
        with self._lock:
            return int(self._guard(lambda: self._depth(self._conn)))

    @staticmethod
    def _depth(conn: sqlite3.Connection) -> int:
        # ids are contiguous: rows only ever leave from the old end (ack, eviction), so max - min + 1 is
        # exact and O(log n), unlike count(*)
        lo, hi = conn.execute("SELECT min(id), max(id) FROM lines").fetchone()
        return 0 if lo is None else int(hi - lo + 1)

    def oldest_age_s(self, now_ns: int) -> float:
        """Seconds since the oldest waiting line was appended (0 when empty)."""
        with self._lock:
            row = self._guard(lambda: self._conn.execute("SELECT added_ns FROM lines ORDER BY id LIMIT 1").fetchone())
        return 0.0 if row is None else max(0.0, (now_ns - int(row[0])) / 1e9)

    def size_bytes(self) -> int:
        """Bytes on disk: the database file, its WAL and the WAL index."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                total += Path(str(self.path) + suffix).stat().st_size
        return total

    def stats(self) -> BufferStats:
        """Depth, size and the counters since open."""
        return BufferStats(self.depth(), self.size_bytes(), self._appended, self._acked, self._dropped)

    def close(self) -> None:
        """Checkpoint the WAL into the database and close."""
        with self._lock:
            with contextlib.suppress(sqlite3.DatabaseError):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()

    def _guard(self, op: Callable[[], Any]) -> Any:
        """Run a database operation; on corruption move the file aside, reopen once and retry."""
        try:
            return op()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) or not _is_corrupt(exc):
                raise
            self._conn.close()
            self._move_aside(exc)
            self._conn = self._connect()
            return op()
