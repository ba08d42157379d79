"""Persistent embedding cache: a rebuild only sends texts it has not embedded before to the model.

Entries live in one RocksDB database (through rocksdict), normally ``ROOT/cache/embeddings`` beside the
versions of an index root, so they survive rebuilds and version clean-up. A key is the encoder's namespace
(its name, e.g. ``all-MiniLM-L6-v2``, ``all-MiniLM-L6-v2-onnx-int8`` or ``multilingual-e5-small-q4``, plus
a fingerprint of the weights and export recipe), a NUL byte, and the 32-byte sha256 of the exact text given
to the encoder; the value is the vector as little-endian float32 bytes. Namespaces contain no NUL byte and
digests have a fixed length, so two encoders never read each other's entries, and a changed model starts
an empty namespace. Only documents (`encode`) are cached; `encode_queries` always asks the model (E5's
query form differs from its document form).

The database is opened for the duration of one `CachedEncoder.encode` call: RocksDB lets one process at a
time open it for writing (the service's query encoder uses no cache). Deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rocksdict import BlockBasedOptions, DBCompressionType, Options, Rdict, WriteBatch
from tqdm import tqdm

from indexer.encoders.base import TextEncoder, WrappedEncoder

SEPARATOR = b"\x00"


def text_digest(text: str) -> bytes:
    """sha256 of the UTF-8 text: the per-text part of a cache key."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def _options() -> Options:
    options = Options(raw_mode=True)
    table = BlockBasedOptions()
    table.set_bloom_filter(10, False)  # most lookups of a first build miss; the filter answers them
    options.set_block_based_table_factory(table)
    options.set_compression_type(DBCompressionType.none())  # float32 noise does not compress
    options.create_if_missing(True)
    return options


class EmbeddingCache:
    """Vectors by (namespace, text digest) in a RocksDB folder; a context manager that closes the database."""

    def __init__(self, path: Path, namespace: str, dim: int) -> None:
        if not namespace or "\x00" in namespace:
            raise ValueError(
                f"cache namespace must be a non-empty string without NUL bytes, got {namespace!r}"
            )
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.path = Path(path)
        self.prefix = namespace.encode("utf-8") + SEPARATOR
        self.dim = dim
        self.path.mkdir(parents=True, exist_ok=True)
        self._db: Rdict | None = Rdict(str(self.path), _options())

    @property
    def db(self) -> Rdict:
        if self._db is None:
            raise ValueError(f"embedding cache {self.path} is closed")
        return self._db

    def get_many(self, digests: Sequence[bytes]) -> list[np.ndarray | None]:
        """Cached vectors for `digests`, in order; None for a miss (or an entry of the wrong size)."""
        if not digests:
            return []
        values: list[bytes | None] = self.db.get([self.prefix + d for d in digests])  # type: ignore[assignment]
        size = 4 * self.dim
        return [
            np.frombuffer(v, dtype="<f4") if isinstance(v, bytes) and len(v) == size else None for v in values
        ]

    def put_many(self, digests: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store rows of `vectors` under `digests` in one write batch."""
        if len(digests) != len(vectors) or (len(vectors) and vectors.shape[1] != self.dim):
            raise ValueError(
                f"need one {self.dim}-dimensional vector per digest, got {len(digests)} digests and "
                f"vectors of shape {vectors.shape}"
            )
        batch = WriteBatch(raw_mode=True)
        rows = np.ascontiguousarray(vectors, dtype="<f4")
        for digest, row in zip(digests, rows, strict=True):
            batch.put(self.prefix + digest, row.tobytes())
        self.db.write(batch)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class CacheStats:
    """Counts of the last `CachedEncoder.encode` call (texts, distinct texts, found in the cache, encoded)."""

    texts: int = 0
    distinct: int = 0
    hits: int = 0
    encoded: int = 0


class CachedEncoder(WrappedEncoder):
    """An encoder that answers from an `EmbeddingCache` and sends only the misses to `inner`, batched.

    Misses are encoded and written in chunks of `write_batch` texts, so an interrupted build keeps what it
    has embedded. Identical texts within one call are encoded once.
    """

    def __init__(self, inner: TextEncoder, directory: Path, *, write_batch: int = 1024) -> None:
        if write_batch < 1:
            raise ValueError(f"write_batch must be >= 1, got {write_batch}")
        super().__init__(inner)
        self.directory = Path(directory)
        self.write_batch = write_batch
        self.last = CacheStats()

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Queries go straight to the model: they are not worth memoising."""
        return self.inner.encode_queries(texts)

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed texts as float32 rows of unit length, from the cache where possible."""
        dim = self.dim
        if not texts:
            self.last = CacheStats()
            return np.zeros((0, dim), dtype=np.float32)
        digests = [text_digest(t) for t in texts]
        first: dict[bytes, int] = {}
        for i, digest in enumerate(digests):
            first.setdefault(digest, i)
        unique = list(first)
        out = np.empty((len(texts), dim), dtype=np.float32)
        found: dict[bytes, np.ndarray] = {}
        with EmbeddingCache(self.directory, self.namespace, dim) as cache:
            for digest, vector in zip(unique, cache.get_many(unique), strict=True):
                if vector is not None:
                    found[digest] = vector
            misses = [d for d in unique if d not in found]
            bar = tqdm(total=len(misses), desc="encode", unit="text", disable=not show_progress)
            for start in range(0, len(misses), self.write_batch):
                chunk = misses[start : start + self.write_batch]
                vectors = self.inner.encode([texts[first[d]] for d in chunk])
                cache.put_many(chunk, vectors)
                found.update(zip(chunk, vectors, strict=True))
                bar.update(len(chunk))
            bar.close()
        for i, digest in enumerate(digests):
            out[i] = found[digest]
        self.last = CacheStats(len(texts), len(unique), len(unique) - len(misses), len(misses))
        return out
