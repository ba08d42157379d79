"""Forward index: item records by external id, stored in RocksDB through rocksdict.

`DocStore.write` builds a fresh store directory in write batches, compacts it into sorted tables and removes
RocksDB's diagnostic `LOG` files, so the directory holds only content files (listed by `DocStore.files`)
that an artifact manifest can checksum. `DocStore.open` opens it read-only by default; RocksDB takes no lock
for read-only opens, so any number of processes can serve from one published store at once.

Keys are the external ids encoded as UTF-8; values are compact JSON (UTF-8, no ASCII escaping): msgpack is
not a dependency of this project, and JSON keeps records readable with any RocksDB tool. The record count
and codec live under a key starting with byte 0xFF, which no UTF-8 string starts with, so no item id meets it.

A RocksDB handle must not cross a `fork`: its background threads stay in the parent. A process forked while
stores are open (`serve --workers`) gives each of them a fresh read-only handle of its own; the inherited
handles are kept, never used nor closed (closing one would wait for threads the child does not have).
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import numpy as np
from rocksdict import (
    AccessType,
    BlockBasedOptions,
    DBCompressionType,
    Options,
    Rdict,
    WriteBatch,
    WriteOptions,
)
from tqdm import tqdm

FORMAT_VERSION = 1
META_KEY = b"\xffdocstore.meta"
# RocksDB's info log (rewritten whenever a store is opened for writing, never needed to read one) and its
# empty lock file carry no content, so neither is listed for checksums (as in `indexer.artifact`).
DIAGNOSTIC_PREFIXES = ("LOG",)
UNLISTED_PREFIXES = ("LOG", "LOCK")
_OPEN_READ_ONLY: weakref.WeakSet[DocStore] = weakref.WeakSet()
_INHERITED: list[Rdict] = []  # handles a fork carried over from the parent (see the module docstring)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a DocStore record: {value!r}")


def _encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode(
        "utf-8"
    )


def _decode(value: bytes) -> dict[str, Any]:
    return json.loads(value)


def _options(*, for_write: bool) -> Options:
    options = Options(raw_mode=True)
    table = BlockBasedOptions()
    table.set_bloom_filter(10, False)  # point lookups of absent ids rarely touch a data block
    options.set_block_based_table_factory(table)
    options.set_compression_type(DBCompressionType.lz4())
    if for_write:
        options.create_if_missing(True)
        options.set_error_if_exists(True)
    return options


class DocStore:
    """Read access to a store written by `DocStore.write`; get one from `DocStore.open` (context manager)."""

    def __init__(self, db: Rdict, path: Path, meta: dict[str, Any], *, read_only: bool = True) -> None:
        self._db: Rdict | None = db
        self.path = path
        self._count = int(meta["count"])
        if read_only:
            _OPEN_READ_ONLY.add(self)

    @staticmethod
    def write(
        path: Path,
        records: Iterable[tuple[str, dict[str, Any]]],
        *,
        batch_size: int = 1000,
        show_progress: bool = False,
    ) -> list[str]:
        """Write `(id, record)` pairs into a new store at `path`; return its files (see `files`).

        `path` must not exist or be an empty directory. Ids must be unique non-empty strings and records
        JSON-serialisable dicts; a violation raises ValueError and leaves a partial directory to delete.
        """
        path = Path(path)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if path.exists() and any(path.iterdir()):
            raise FileExistsError(f"{path} already exists and is not empty; a DocStore is written once")
        db = Rdict(str(path), _options(for_write=True))
        try:
            count = _write_batches(db, records, batch_size, show_progress)
            db.put(META_KEY, _encode({"format_version": FORMAT_VERSION, "codec": "json", "count": count}))
            db.flush()
            db.compact_range(None, None)
        finally:
            db.close()
        for log in path.iterdir():
            if log.name.startswith(DIAGNOSTIC_PREFIXES):
                log.unlink()
        return DocStore.files(path)

    @staticmethod
    def files(path: Path) -> list[str]:
        """Relative paths of the content files of a store, sorted: what to checksum (not LOG*, LOCK)."""
        path = Path(path)
        return sorted(
            str(f.relative_to(path))
            for f in path.rglob("*")
            if f.is_file() and not f.name.startswith(UNLISTED_PREFIXES)
        )

    @classmethod
    def open(cls, path: Path, *, read_only: bool = True) -> DocStore:
        """Open a store; read-only opens take no lock and may run in many processes over the same files."""
        path = Path(path)
        if not (path / "CURRENT").is_file():
            raise FileNotFoundError(f"{path} is not a DocStore (no RocksDB CURRENT file)")
        access = AccessType.read_only() if read_only else AccessType.read_write()
        db = Rdict(str(path), _options(for_write=False), access_type=access)
        raw_meta = db.get(META_KEY)
        if raw_meta is None:
            db.close()
            raise ValueError(f"{path} has no DocStore metadata; was it written by DocStore.write?")
        meta = _decode(raw_meta)
        if meta.get("format_version", 0) > FORMAT_VERSION or meta.get("codec") != "json":
            db.close()
            raise ValueError(
                f"{path}: DocStore format {meta.get('format_version')!r} with codec {meta.get('codec')!r}; "
                f"this searchrec reads format <= {FORMAT_VERSION} with codec 'json'"
            )
        return cls(db, path, meta, read_only=read_only)

    @property
    def db(self) -> Rdict:
        if self._db is None:
            raise ValueError(f"DocStore {self.path} is closed")
        return self._db

    def get(self, item_id: str) -> dict[str, Any] | None:
        """The record stored for `item_id`, or None."""
        value = self.db.get(item_id.encode("utf-8"))
        return None if value is None else _decode(value)

    def get_many(self, ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """Records for `ids` in the same order (None where absent), read with one RocksDB multi-get."""
        if not ids:
            return []
        values: list[bytes | None] = self.db.get([i.encode("utf-8") for i in ids])  # type: ignore[assignment]
        return [None if v is None else _decode(v) for v in values]

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and self.db.get(item_id.encode("utf-8")) is not None

    def ids(self) -> Iterator[str]:
        """Every stored id in byte order of its UTF-8 encoding."""
        for key in self.db.keys():  # noqa: SIM118 (an Rdict iterates keys only via keys())
            raw = cast(bytes, key)  # raw mode: keys are bytes
            if raw.startswith(b"\xff"):  # only the metadata key; UTF-8 ids never start with 0xFF
                break
            yield raw.decode("utf-8")

    def __len__(self) -> int:
        return self._count

    def count(self) -> int:
        return self._count

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _reopen_after_fork(self) -> None:
        if self._db is not None:
            _INHERITED.append(self._db)
            self._db = Rdict(str(self.path), _options(for_write=False), access_type=AccessType.read_only())

    def __enter__(self) -> DocStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _reopen_stores_after_fork() -> None:
    for store in list(_OPEN_READ_ONLY):
        store._reopen_after_fork()


os.register_at_fork(after_in_child=_reopen_stores_after_fork)


def _write_batches(
    db: Rdict, records: Iterable[tuple[str, dict[str, Any]]], batch_size: int, show_progress: bool
) -> int:
    """Put every record through WriteBatches (WAL off: the store is flushed before it is closed)."""
    write_options = WriteOptions()
    write_options.disable_wal = True  # type: ignore[method-assign,assignment]  # a property, not a method
    seen: set[str] = set()
    batch = WriteBatch(raw_mode=True)
    for item_id, record in tqdm(records, desc="docstore", unit="doc", disable=not show_progress):
        if not isinstance(item_id, str) or not item_id:
            raise ValueError(f"DocStore ids must be non-empty strings, got {item_id!r}")
        if not isinstance(record, dict):
            raise ValueError(f"DocStore record for {item_id!r} must be a dict, got {type(record).__name__}")
        if item_id in seen:
            raise ValueError(f"duplicate id {item_id!r}; DocStore ids must be unique")
        seen.add(item_id)
        batch.put(item_id.encode("utf-8"), _encode(record))
        if batch.len() >= batch_size:
            db.write(batch, write_options)
            batch = WriteBatch(raw_mode=True)
    if not batch.is_empty():
        db.write(batch, write_options)
    return len(seen)
