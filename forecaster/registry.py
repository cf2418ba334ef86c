"""The model registry: one folder per fine-tuned version, an atomic `active` pointer, a fine-tune lock.

Layout:
    <registry_dir>/versions/<version>/adapter/   (LoRA adapter, or full weights for mode=full)
    <registry_dir>/versions/<version>/manifest.json
    <registry_dir>/active          (the active version id; replaced atomically with os.replace)
    <registry_dir>/history.json    (previously active versions, for rollback)
    <registry_dir>/finetune.lock   (held with flock while a fine-tune runs)
    <registry_dir>/finetune-*/     (a running fine-tune's scratch; a killed one's is removed under the lock)

A version whose manifest cannot be read is set aside: left on disk, listed by `broken()`, logged once per
process, and never used; every other version, the base model and the baselines go on.
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

from bess_common.logs import get_logger

log = get_logger("forecaster.registry")
SCRATCH_PREFIX = "finetune-"


class RegistryLocked(RuntimeError):
    """Another fine-tune holds the lock."""


class RegistryError(RuntimeError):
    """The registry cannot be read or written as asked; the message is one line saying what to do."""


@dataclass(frozen=True)
class Broken:
    """A version set aside: its folder stays, it is never used."""

    version: str
    reason: str


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


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest as a dict; ValueError (with the reason) when it is not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"manifest.json unreadable ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"manifest.json is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("manifest.json is not a JSON object")
    return data


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
        self._reported: set[tuple[str, str]] = set()

    def scan(self) -> tuple[list[Version], list[Broken]]:
        """(complete usable versions, versions set aside), oldest first. Each set-aside version is logged
        once per Registry object (a service keeps one for its lifetime)."""
        if not self.versions_dir.is_dir():
            return [], []
        good, broken = [], []
        for path in sorted(p for p in self.versions_dir.iterdir() if p.is_dir()):
            manifest = path / "manifest.json"
            if not manifest.is_file():
                continue  # still being written (the manifest comes last)
            try:
                good.append(Version(path.name, path, _read_manifest(manifest)))
            except ValueError as exc:
                broken.append(Broken(path.name, str(exc)))
        for b in broken:
            if (b.version, b.reason) not in self._reported:
                self._reported.add((b.version, b.reason))
                log.error(
                    "registry_version_set_aside",
                    version=b.version,
                    reason=b.reason,
                    effect="not used; the other versions, the base model and the baselines go on",
                    fix=f"restore {self.versions_dir / b.version} from a backup or delete it",
                )
        return good, broken

    def versions(self) -> list[Version]:
        """All complete, readable versions, oldest first (damaged ones are set aside: see `broken`)."""
        return self.scan()[0]

    def broken(self) -> list[Broken]:
        """Versions set aside (their manifest cannot be read)."""
        return self.scan()[1]

    def active_name(self) -> str | None:
        """What the `active` pointer names (None = base only), whether or not that version is usable."""
        pointer = self.root / "active"
        try:
            name = pointer.read_text().strip()
        except FileNotFoundError:
            return None
        return name or None

    def adapter_problem(self, version: Version) -> str | None:
        """Why the version's saved adapter cannot be trusted (missing, or not the bytes the manifest
        recorded), or None when it checks out."""
        if not version.adapter_dir.is_dir():
            return f"adapter folder {version.adapter_dir} is missing"
        expected = version.manifest.get("adapter_sha256")
        if not expected:
            return "manifest.json records no adapter_sha256"
        try:
            actual = dir_hash(version.adapter_dir)
        except OSError as exc:
            return f"adapter unreadable ({exc})"
        if actual != expected:
            return (
                f"adapter sha256 {actual[:12]}… differs from the recorded {str(expected)[:12]}… (truncated or altered)"
            )
        return None

    def get(self, version: str) -> Version:
        """One version; KeyError when unknown."""
        for v in self.versions():
            if v.version == version:
                return v
        raise KeyError(version)

    def active(self) -> Version | None:
        """The active version, or None (base only, or the named version is gone or set aside)."""
        name = self.active_name()
        if name is None:
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
        """Previously active versions, oldest first; RegistryError (one line) when history.json is damaged."""
        path = self.root / "history.json"
        if not path.is_file():
            return []
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RegistryError(f"{path} is damaged ({exc.__class__.__name__}: {exc})") from None
        if not isinstance(data, list):
            raise RegistryError(f"{path} is damaged (not a JSON list)")
        return [str(v) for v in data]

    def _set_history_aside(self) -> str:
        path = self.root / "history.json"
        aside = path.with_name(f"history.json.damaged-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        path.replace(aside)
        return str(aside)

    def writable_problem(self) -> str | None:
        """One line when this user cannot create versions or move `active` here, else None."""
        existing = next((p for p in (self.root, *self.root.parents) if p.exists()), None)
        for folder in (self.versions_dir, self.root, existing):
            if folder is not None and folder.exists():
                if not folder.is_dir():
                    return f"registry {self.root}: {folder} is not a folder"
                if not os.access(folder, os.W_OK | os.X_OK):
                    return (
                        f"registry {self.root}: {folder} is not writable by this user (uid {os.getuid()}); "
                        f"run as the service user (sudo -u bess-edge ...) or fix the permissions"
                    )
                break
        return None

    def _writing(self, what: str) -> RegistryError:
        return RegistryError(self.writable_problem() or f"registry {self.root}: cannot {what}")

    def set_active(self, version: str | None) -> None:
        """Point `active` at a version (None = base only), atomically; remember the previous one.

        KeyError for an unknown or set-aside version; RegistryError (one line) when the registry is not
        writable. A damaged history.json is set aside (renamed) and logged: the rollback history restarts."""
        if version is not None:
            self.get(version)  # must exist
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                history = self._history()
            except RegistryError as exc:
                aside = self._set_history_aside()
                log.warning("registry_history_set_aside", reason=str(exc), moved_to=aside)
                history = []
            history.append(self.active_name() or "")
            _write_atomic(self.root / "history.json", json.dumps(history[-50:]))
            _write_atomic(self.root / "active", (version or "") + "\n")
        except OSError as exc:
            raise self._writing(f"write ({exc.strerror})") from None

    def rollback(self) -> tuple[str | None, list[str]]:
        """Re-activate the newest previously active version that still exists (None = base) and return it
        with the versions skipped on the way (pruned or set aside). KeyError when nothing is left to roll
        back to; RegistryError when history.json is damaged or the registry is not writable."""
        history = self._history()
        current = self.active_name() or ""
        usable = {v.version for v in self.versions()}
        skipped: list[str] = []
        while history:
            previous = history.pop()
            if previous == current:
                continue
            if previous == "" or previous in usable:
                try:
                    _write_atomic(self.root / "history.json", json.dumps(history))
                    _write_atomic(self.root / "active", previous + "\n")
                except OSError as exc:
                    raise self._writing(f"write ({exc.strerror})") from None
                return previous or None, skipped
            skipped.append(previous)
        raise KeyError(
            "no previous active version" + (f" left (gone or set aside: {', '.join(skipped)})" if skipped else "")
        )

    def prune(self, keep: int) -> list[str]:
        """Delete all but the last `keep` versions (never the active one); returns the deleted ids."""
        active = self.active_name()
        versions = self.versions()
        doomed = [v for v in versions[:-keep] if v.version != active]
        for v in doomed:
            shutil.rmtree(v.path)
        return [v.version for v in doomed]

    def clean_scratch(self) -> list[str]:
        """Remove scratch folders left by killed fine-tunes. Call only while holding `lock()`."""
        if not self.root.is_dir():
            return []
        stale = [p for p in self.root.iterdir() if p.is_dir() and p.name.startswith(SCRATCH_PREFIX)]
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        if stale:
            log.info("finetune_scratch_removed", folders=[p.name for p in stale])
        return [p.name for p in stale]

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive fine-tune lock (flock, released if the process dies); RegistryLocked when taken,
        RegistryError when the registry is not writable."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = (self.root / "finetune.lock").open("a+")
        except OSError as exc:
            raise self._writing(f"create the lock file ({exc.strerror})") from None
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RegistryLocked(f"another fine-tune is running (lock {self.root / 'finetune.lock'})") from None
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
