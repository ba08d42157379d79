"""Versioned artifact roots with atomic publish.

Layout of a root::

    ROOT/versions/<version>/manifest.json ...   one directory per finished build, never changed once published
    ROOT/versions/.staging-<version>/           a build in progress (debris if the build died)
    ROOT/versions/.retired-<version>/           a pruned version being deleted (debris if that died)
    ROOT/CURRENT                                the published version's name, replaced atomically

A build writes into a staging directory, renames it into `versions/` when complete, and only then replaces
`CURRENT` (write to a temporary file, fsync, `os.replace`). A build that fails or is killed at any moment
therefore leaves `CURRENT` and every published version untouched; the next build removes the debris.
Pruning renames an old version out of the published set before deleting it, so a prune that dies midway
never leaves a half-deleted version that looks published.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from indexer.artifact import MANIFEST, ArtifactError
from indexer.crash_points import crash_point

CURRENT = "CURRENT"
STAGING_PREFIX = ".staging-"
RETIRED_PREFIX = ".retired-"


@dataclass(frozen=True, slots=True)
class VersionInfo:
    name: str
    path: Path
    current: bool


def version_name(sequence: int) -> str:
    """Sortable and unique under a root: a sequence number, then the UTC build time for people to read."""
    return f"v{sequence:06d}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"


def _sequence(name: str) -> int:
    head = name.removeprefix(STAGING_PREFIX).removeprefix(RETIRED_PREFIX).split("-", 1)[0]
    return int(head[1:]) if head.startswith("v") and head[1:].isdigit() else 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class VersionStore:
    """The versions under one root, and the pointer to the published one."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"

    def current_name(self) -> str | None:
        pointer = self.root / CURRENT
        if not pointer.is_file():
            return None
        return pointer.read_text(encoding="utf-8").strip() or None

    def current(self) -> Path:
        """Directory of the published version; `ArtifactError` when nothing is published."""
        name = self.current_name()
        if name is None:
            raise ArtifactError(
                f"{self.root} has no published version (no {CURRENT} file); run `searchrec build` first"
            )
        path = self.versions_dir / name
        if not (path / MANIFEST).is_file():
            raise ArtifactError(
                f"{self.root}/{CURRENT} names version {name!r}, but {path} is not a finished build"
            )
        return path

    def published(self) -> list[VersionInfo]:
        if not self.versions_dir.is_dir():
            return []
        current = self.current_name()
        names = sorted(
            p.name
            for p in self.versions_dir.iterdir()
            if not p.name.startswith(".") and (p / MANIFEST).is_file()
        )
        return [VersionInfo(name, self.versions_dir / name, name == current) for name in names]

    def publish(self, name: str) -> None:
        """Make `name` the current version atomically."""
        if not (self.versions_dir / name / MANIFEST).is_file():
            known = ", ".join(v.name for v in self.published()) or "none"
            raise ArtifactError(
                f"version {name!r} does not exist under {self.versions_dir}; known versions: {known}"
            )
        tmp = self.root / f".{CURRENT}.{uuid.uuid4().hex}.tmp"
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        crash_point("publish:written")
        os.replace(tmp, self.root / CURRENT)
        _fsync_dir(self.root)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".build.lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ArtifactError(
                    f"another build is running on {self.root}; wait for it to finish"
                ) from None
            yield

    def clean_debris(self) -> list[str]:
        """Remove staging directories of builds that died and versions whose pruning died (call only while
        holding the build lock)."""
        removed = []
        for prefix in (STAGING_PREFIX, RETIRED_PREFIX):
            for path in self.versions_dir.glob(f"{prefix}*") if self.versions_dir.is_dir() else []:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        for tmp in self.root.glob(f".{CURRENT}.*.tmp"):
            tmp.unlink(missing_ok=True)
        return removed

    def prune(self, keep: int) -> list[str]:
        """Delete the oldest versions beyond `keep`, never the current one."""
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        versions = [v for v in self.published() if not v.current]
        surplus = max(0, len(versions) + 1 - keep)
        doomed = versions[:surplus]
        for version in doomed:
            retired = self.versions_dir / f"{RETIRED_PREFIX}{version.name}"
            version.path.rename(retired)  # atomic: the version stops being published before any file goes
            _fsync_dir(self.versions_dir)
            crash_point("prune:retired")
            shutil.rmtree(retired)
        return [v.name for v in doomed]

    @contextmanager
    def build(self, *, keep: int = 3, publish: bool = True) -> Iterator[tuple[str, Path]]:
        """Yield (version name, staging directory); on success the version is finalised and published."""
        with self._lock():
            self.clean_debris()
            existing = os.listdir(self.versions_dir) if self.versions_dir.is_dir() else []
            name = version_name(1 + max(map(_sequence, existing), default=0))
            staging = self.versions_dir / f"{STAGING_PREFIX}{name}"
            staging.mkdir(parents=True)
            try:
                yield name, staging
                if not (staging / MANIFEST).is_file():
                    raise ArtifactError(f"build of {name} finished without writing {MANIFEST}")
                crash_point("version:staged")
                final = self.versions_dir / name
                staging.rename(final)
                _fsync_dir(self.versions_dir)
                crash_point("version:final")
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            if publish:
                self.publish(name)
                crash_point("version:published")
                self.prune(keep)


def resolve_artifact(path: Path) -> Path:
    """A version directory as given, or the current version of a root."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    if not path.exists():
        raise ArtifactError(f"index path {path} does not exist")
    return VersionStore(path).current()
