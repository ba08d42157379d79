"""Artifact directories: a `manifest.json` with kind, format version, build parameters and a sha256 per file.

Loading checks the format version (a newer one is refused with a clear message) and every checksum, so a
truncated or tampered file is caught before it can serve a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# RocksDB writes these beside its data even when opened read-only; they carry no content.
UNCHECKED_PREFIXES = ("LOG", "LOCK")
TRACKED_LIBRARIES = (
    "numpy",
    "hnswlib",
    "faiss-cpu",
    "annoy",
    "gensim",
    "rocksdict",
    "torch",
    "sentence-transformers",
)


class ArtifactError(RuntimeError):
    """An artifact that is missing, newer than this code understands, or fails its checksums."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("searchrec", *TRACKED_LIBRARIES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _content_files(directory: Path) -> list[Path]:
    return sorted(
        path
        for path in directory.rglob("*")
        if path.is_file() and path.name != MANIFEST and not path.name.startswith(UNCHECKED_PREFIXES)
    )


def write_manifest(directory: Path, *, kind: str, params: dict, parts: dict | None = None) -> dict:
    """Checksum every file under `directory` and write the manifest last, so its presence means 'complete'."""
    directory = Path(directory)
    manifest = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "libraries": library_versions(),
        "params": params,
        "parts": parts or {},
        "files": {str(path.relative_to(directory)): sha256_of(path) for path in _content_files(directory)},
    }
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(directory / MANIFEST)
    return manifest


def read_manifest(directory: Path, *, kind: str | None = None, verify: bool = True) -> dict:
    """Read and check an artifact's manifest; raise `ArtifactError` naming what is wrong."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactError(
            f"{directory} is not an artifact: {MANIFEST} is missing (was the build finished?)"
        )
    manifest = json.loads(path.read_text(encoding="utf-8"))
    found = manifest.get("format_version")
    if not isinstance(found, int) or found > FORMAT_VERSION:
        raise ArtifactError(
            f"{directory} has format version {found!r}; this searchrec reads up to {FORMAT_VERSION}. "
            "Upgrade searchrec or rebuild the index."
        )
    if kind is not None and manifest.get("kind") != kind:
        raise ArtifactError(f"{directory} holds a {manifest.get('kind')!r} artifact, expected {kind!r}")
    if verify:
        verify_checksums(directory, manifest)
    return manifest


def verify_checksums(directory: Path, manifest: dict) -> None:
    for name, expected in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{directory}: file {name} listed in the manifest is missing")
        if sha256_of(path) != expected:
            raise ArtifactError(
                f"{directory}: checksum mismatch for {name}; the file was changed after the build"
            )
