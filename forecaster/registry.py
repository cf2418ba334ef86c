"""The model registry: one folder per fine-tuned version, an atomic `active` pointer, a fine-tune lock.

Layout:
    <registry_dir>/versions/<version>/adapter/   (LoRA adapter, or full weights for mode=full)
    <registry_dir>/versions/<version>/manifest.json
    <registry_dir>/active          (the active version id; replaced atomically with os.replace)
    <registry_dir>/history.json    (previously active versions, for rollback)
    <registry_dir>/finetune.lock   (held with flock while a fine-tune runs)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class RegistryLocked(RuntimeError):
    """Another fine-tune holds the lock."""


@dataclass(frozen=True)
class Version:
    """One stored version."""

    version: str
    path: Path
    manifest: dict[str, Any]

    @property
    def adapter_dir(self) -> Path:
        """The saved adapter (or weights) folder."""
        return self.path / "adapter"


def new_version_id(now: datetime | None = None) -> str:
    """Sortable id: ft-YYYYmmddTHHMMSSZ."""
    return (now or datetime.now(UTC)).strftime("ft-%Y%m%dT%H%M%SZ")


def dir_hash(path: Path) -> str:
    """sha256 over the files of a folder (names and bytes, sorted)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)  # atomic rename (os.replace)


class Registry:
    """Versions on disk; safe to read from a running service while a fine-tune writes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"

    def versions(self) -> list[Version]:
        """All complete versions, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        out = []
        for path in sorted(self.versions_dir.iterdir()):
            manifest = path / "manifest.json"
            if manifest.is_file():
                out.append(Version(path.name, path, json.loads(manifest.read_text())))
        return out

    def get(self, version: str) -> Version:
        """One version; KeyError when unknown."""
        for v in self.versions():
            if v.version == version:
                return v
        raise KeyError(version)

    def active(self) -> Version | None:
        """The active version, or None (base only)."""
        pointer = self.root / "active"
        if not pointer.is_file():
            return None
        name = pointer.read_text().strip()
        if not name:
            return None
        try:
            return self.get(name)
        except KeyError:
            return None

    def add(self, version: str, adapter_src: Path, manifest: dict[str, Any]) -> Version:
        """Copy a saved adapter into the registry with its manifest (written last: marks it complete)."""
        path = self.versions_dir / version
        path.mkdir(parents=True, exist_ok=False)
        shutil.copytree(adapter_src, path / "adapter")
        manifest = {**manifest, "version": version, "adapter_sha256": dir_hash(path / "adapter")}
        _write_atomic(path / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
        return Version(version, path, manifest)

    def _history(self) -> list[str]:
        path = self.root / "history.json"
        return list(json.loads(path.read_text())) if path.is_file() else []

    def set_active(self, version: str | None) -> None:
        """Point `active` at a version (None = base only), atomically; remember the previous one."""
        if version is not None:
            self.get(version)  # must exist
        self.root.mkdir(parents=True, exist_ok=True)
        current = self.active()
        history = self._history()
        history.append(current.version if current else "")
        _write_atomic(self.root / "history.json", json.dumps(history[-50:]))
        _write_atomic(self.root / "active", (version or "") + "\n")

    def rollback(self) -> str | None:
        """Re-activate the previously active version; returns it (None = base). KeyError if no history."""
        history = self._history()
        if not history:
            raise KeyError("no previous active version")
        previous = history.pop() or None
        if previous is not None:
            self.get(previous)
        _write_atomic(self.root / "history.json", json.dumps(history))
        _write_atomic(self.root / "active", (previous or "") + "\n")
        return previous

    def prune(self, keep: int) -> list[str]:
        """Delete all but the last `keep` versions (never the active one); returns the deleted ids."""
        active = self.active()
        versions = self.versions()
        doomed = [v for v in versions[:-keep] if active is None or v.version != active.version]
        for v in doomed:
            shutil.rmtree(v.path)
        return [v.version for v in doomed]

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive fine-tune lock (flock, released if the process dies); RegistryLocked when taken."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "finetune.lock").open("a+") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RegistryLocked(f"another fine-tune is running (lock {self.root / 'finetune.lock'})") from None
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
