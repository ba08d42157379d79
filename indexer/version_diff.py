"""Compare two versions of an artifact part by part: what a reproducible build must keep equal.

`diff_versions(a, b)` lists what differs between two version directories (of a collection or a ranker; an
artifact root stands for its current version). Both manifests are read and their checksums verified first
(`indexer.artifact.read_manifest`), then:

- every content file is compared by its checksum; a file only one side has is a difference;
- a RocksDB store (a folder holding RocksDB's ``CURRENT`` file: the forward index, ``docstore/``) is compared
  by its records (every key and value, the store's metadata included), not by its files: RocksDB writes a
  random database identity and session ids into ``IDENTITY``, ``MANIFEST-*`` and its tables, so two stores
  of the same records never have equal bytes;
- ``manifest.json`` is compared key by key, leaving out what two builds never share: the build time
  (``created_at``), the version name (``parts.version``), the stage timings (``params.seconds``), the
  checksums and sizes (compared above, file by file) and the manifest's seal over all of these.

Each difference names its part (the top-level folder or file: ``bm25``, ``dense``, ``docstore``,
``word2vec``, ``behaviour``, ``model``, ``manifest.json`` ...), the file, record or manifest key, and what
differs. `searchrec versions diff A B` prints them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from indexer.artifact import MANIFEST, read_manifest
from indexer.docstore import DocStore
from indexer.versions import resolve_artifact

ROCKSDB_MARKER = "CURRENT"  # RocksDB's pointer to its live MANIFEST: every store has one
# Manifest keys that differ between any two builds, as paths into the manifest.
VOLATILE_KEYS: tuple[tuple[str, ...], ...] = (("created_at",), ("parts", "version"), ("params", "seconds"))
EXAMPLES = 10  # differing records or keys named per store or manifest; the rest are counted


@dataclass(frozen=True, slots=True)
class Difference:
    part: str  # top-level folder or file of the version: "bm25", "docstore", "manifest.json", ...
    where: str  # the file, the record id or the manifest key
    detail: str  # what differs

    def __str__(self) -> str:
        return f"{self.part}: {self.where}: {self.detail}"


def diff_versions(a: Path, b: Path) -> list[Difference]:
    """Every difference between versions `a` and `b` (module docstring); empty when they are the same."""
    a, b = resolve_artifact(a), resolve_artifact(b)
    manifest_a, manifest_b = read_manifest(a), read_manifest(b)
    files_a: dict[str, str] = manifest_a["files"]
    files_b: dict[str, str] = manifest_b["files"]
    stores = sorted(_stores(files_a) | _stores(files_b))
    differences: list[Difference] = []
    for name in sorted(set(files_a) | set(files_b)):
        if any(Path(name).is_relative_to(store) for store in stores):
            continue
        if files_a.get(name) != files_b.get(name):
            detail = "contents differ" if name in files_a and name in files_b else _only(name in files_a)
            differences.append(Difference(_part(name), name, detail))
    for store in stores:
        differences += _diff_store(a / store, b / store, store)
    differences += _diff_manifests(manifest_a, manifest_b)
    return differences


def _part(name: str) -> str:
    return Path(name).parts[0]


def _only(in_first: bool) -> str:
    return f"only in the {'first' if in_first else 'second'} version"


def _stores(files: dict[str, str]) -> set[str]:
    """Relative folders of the RocksDB stores among a version's files."""
    return {str(Path(name).parent) for name in files if Path(name).name == ROCKSDB_MARKER} - {"."}


def _diff_store(a: Path, b: Path, store: str) -> list[Difference]:
    present = ((a / ROCKSDB_MARKER).is_file(), (b / ROCKSDB_MARKER).is_file())
    if not all(present):
        return [Difference(_part(store), store, "a RocksDB store " + _only(present[0]))]
    differing: list[str] = []
    with DocStore.open(a) as first, DocStore.open(b) as second:
        for record_a, record_b in itertools.zip_longest(_records(first), _records(second)):
            if record_a == record_b:
                continue
            key_a = record_a[0] if record_a is not None else None
            key_b = record_b[0] if record_b is not None else None
            if key_a != key_b:  # the key sets part here: name the first unmatched key and stop
                differing.append(f"{key_a if key_a is not None else key_b!r} (keys differ from here on)")
                break
            differing.append(repr(key_a))
    if not differing:
        return []
    more = f" and {len(differing) - EXAMPLES} more" if len(differing) > EXAMPLES else ""
    detail = f"{len(differing)} record(s) differ: {', '.join(differing[:EXAMPLES])}{more}"
    return [Difference(_part(store), store, detail)]


def _records(store: DocStore) -> Iterator[tuple[str, bytes]]:
    """Every (key, raw value) of a store in key order, keys decoded for people (the metadata key too)."""
    for key, value in store.db.items():  # raw mode: keys and values are bytes
        yield cast(bytes, key).decode("utf-8", errors="backslashreplace"), cast(bytes, value)


def _diff_manifests(a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
    keys = _diff_values(_without_volatile(a), _without_volatile(b), ())
    if not keys:
        return []
    shown = keys[:EXAMPLES]
    differences = [Difference(MANIFEST, ".".join(path) or "(whole)", detail) for path, detail in shown]
    if len(keys) > EXAMPLES:
        differences.append(Difference(MANIFEST, "...", f"{len(keys) - EXAMPLES} more key(s) differ"))
    return differences


def _without_volatile(manifest: dict[str, Any]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(manifest))
    for derived in (
        "files",
        "sizes",
        "manifest_sha256",
    ):  # per-file checks compare files; the seal covers times
        copy.pop(derived, None)
    for path in VOLATILE_KEYS:
        holder = copy
        for key in path[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None  # type: ignore[assignment]
        if isinstance(holder, dict):
            holder.pop(path[-1], None)
    return copy


def _diff_values(a: Any, b: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                found.append(((*path, key), _only(key in a)))
            else:
                found += _diff_values(a[key], b[key], (*path, key))
        return found
    if a == b:
        return []
    return [(path, f"{_short(a)} != {_short(b)}")]


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."
