"""Artifact directories: a `manifest.json` with kind, format version, build parameters and a sha256 per file.

Loading (`read_manifest`) refuses, with an `ArtifactError` that names the file relative to the artifact
directory and what is wrong with it:

- a manifest that is missing, unreadable (not UTF-8 JSON, truncated, lacking its keys) or changed after the
  build: the manifest carries a sha256 of itself (``manifest_sha256``, over its other keys in canonical
  JSON), so a flipped byte anywhere in it is caught, not read as a different parameter or checksum;
- a newer format version than this code reads, or another kind of artifact than asked for;
- a listed file that is missing, of another size than the build wrote (``truncated``), or whose sha256
  differs from the manifest's (``checksum mismatch``).

Sizes are compared for every file before any is hashed, so a truncated file is named as such and found fast.
Format versions: 1 wrote neither sizes nor the manifest's own checksum (still read, without those checks);
2 adds both, and stores Word2Vec vectors as ``.npy`` plus a JSON vocabulary (`indexer.word2vec`).
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
MANIFEST_CHECKSUM = "manifest_sha256"  # the manifest's key holding the sha256 of its other keys
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
    """An artifact that is missing, newer than this code understands, or fails its checksums.

    `path` is the artifact directory and `file` the offending file relative to it, when one is to blame."""

    def __init__(self, message: str, *, path: Path | None = None, file: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.file = file


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


def manifest_digest(manifest: dict) -> str:
    """sha256 of `manifest` without its own checksum, in canonical JSON (sorted keys, no spaces, UTF-8)."""
    body = {key: value for key, value in manifest.items() if key != MANIFEST_CHECKSUM}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class FileChecksums(NamedTuple):
    """The sha256 and the size of each content file of a folder, by path relative to it."""

    sha256: dict[str, str]
    sizes: dict[str, int]


def file_checksums(directory: Path) -> FileChecksums:
    """Hash every content file under `directory` (not the manifest, not RocksDB's ``LOG``/``LOCK``): what a
    manifest lists."""
    directory = Path(directory)
    files = _content_files(directory)
    return FileChecksums(
        {str(path.relative_to(directory)): sha256_of(path) for path in files},
        {str(path.relative_to(directory)): path.stat().st_size for path in files},
    )


def write_manifest(
    directory: Path,
    *,
    kind: str,
    params: dict,
    parts: dict | None = None,
    checksums: FileChecksums | None = None,
) -> dict:
    """Checksum every file under `directory` and write the manifest last, so its presence means 'complete'.
    `checksums` are the files' `file_checksums` when the caller took them just before (to put something
    derived from them into `params`), so the files are read once; nothing may change them in between."""
    directory = Path(directory)
    files = checksums if checksums is not None else file_checksums(directory)
    manifest = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "libraries": library_versions(),
        "params": params,
        "parts": parts or {},
        "files": files.sha256,
        "sizes": files.sizes,
    }
    return rewrite_manifest(directory, manifest)


def rewrite_manifest(directory: Path, manifest: dict) -> dict:
    """Write `manifest` as the manifest of `directory`, sealed with a fresh checksum of itself (atomically:
    a temporary file renamed over it). For the build, and for tools and tests that change a manifest on
    purpose; the files' checksums in it are left as they are. Returns what was written."""
    directory = Path(directory)
    sealed = {**manifest, MANIFEST_CHECKSUM: manifest_digest(manifest)}
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(sealed, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(directory / MANIFEST)
    return sealed


def _unreadable(directory: Path, reason: str) -> ArtifactError:
    return ArtifactError(
        f"{directory}: {MANIFEST} is unreadable ({reason}); it was damaged after the build",
        path=directory,
        file=MANIFEST,
    )


def read_manifest(directory: Path, *, kind: str | None = None, verify: bool = True) -> dict:
    """Read and check an artifact's manifest; raise `ArtifactError` naming what is wrong (see the module
    docstring). `verify=False` checks the manifest alone, not the files it lists (a quick look)."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactError(
            f"{directory} is not an artifact: {MANIFEST} is missing (was the build finished?)",
            path=directory,
            file=MANIFEST,
        )
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        raise _unreadable(directory, f"not UTF-8 text: byte {error.start}") from None
    except json.JSONDecodeError as error:
        raise _unreadable(directory, f"not JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise _unreadable(directory, f"a JSON {type(manifest).__name__}, not an object")
    recorded = manifest.get(MANIFEST_CHECKSUM)
    if recorded is not None and recorded != manifest_digest(manifest):
        raise ArtifactError(
            f"{directory}: checksum mismatch for {MANIFEST}: its content differs from the sha256 it was "
            "sealed with (the manifest changed after the build)",
            path=directory,
            file=MANIFEST,
        )
    found = manifest.get("format_version")
    if not isinstance(found, int) or found > FORMAT_VERSION:
        raise ArtifactError(
            f"{directory} has format version {found!r}; this searchrec reads up to {FORMAT_VERSION}. "
            "Upgrade searchrec or rebuild the index.",
            path=directory,
            file=MANIFEST,
        )
    if recorded is None and found >= 2:
        raise _unreadable(directory, f"format {found} without its {MANIFEST_CHECKSUM}")
    for key, expected in (("files", dict), ("params", dict), ("parts", dict)):
        if not isinstance(manifest.get(key), expected):
            raise _unreadable(directory, f"no {key!r} object")
    if kind is not None and manifest.get("kind") != kind:
        raise ArtifactError(
            f"{directory} holds a {manifest.get('kind')!r} artifact, expected {kind!r}", path=directory
        )
    if verify:
        verify_checksums(directory, manifest)
    return manifest


def verify_checksums(directory: Path, manifest: dict, *, under: str | None = None) -> None:
    """Check every file the manifest lists (only those under the folder `under`, when given): present, of
    the size the build wrote, with the sha256 it recorded. Sizes first, so truncation is named as such and
    found before any file is hashed."""
    directory = Path(directory)
    files: dict[str, str] = manifest["files"]
    sizes: dict[str, int] = manifest.get("sizes") or {}
    names = [name for name in files if under is None or name.startswith(f"{under.rstrip('/')}/")]
    for name in names:
        path = directory / name
        if not path.is_file():
            raise ArtifactError(
                f"{directory}: {name} is missing (the manifest lists it)", path=directory, file=name
            )
        size, built = path.stat().st_size, sizes.get(name)
        if built is not None and size != built:
            state = "truncated" if size < built else "longer than built"
            raise ArtifactError(
                f"{directory}: {name} is {state}: {size} bytes, the build wrote {built}",
                path=directory,
                file=name,
            )
    for name in names:
        if sha256_of(directory / name) != files[name]:
            raise ArtifactError(
                f"{directory}: checksum mismatch for {name}: its sha256 differs from the manifest's (the "
                "file changed after the build)",
                path=directory,
                file=name,
            )
