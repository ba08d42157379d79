"""In-memory caches of what a service computes per query text: a bounded, thread-safe LRU (`LruCache`), and
an encoder wrapper that answers `encode_queries` from one (`QueryCachedEncoder`).

Search traffic repeats itself (popular queries, pagination, retries, the same text sent to several
collections), and a query's embedding is the costliest part of a search, so a service keeps the last
`QUERY_CACHE_SIZE` query embeddings in memory: about 6 MB at 384 dimensions. A key is the encoder's namespace
(model name and weights fingerprint, as in the persistent `indexer.encoders.embedding_cache`) and the sha256
of the text, so a long pasted query costs 32 bytes of key, and two kinds of encoder never read each other's
entries. Cached vectors are read-only; a caller gets a fresh array.

Documents (`encode`) are not cached here: a build's document embeddings go through the persistent cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

import numpy as np

from indexer.encoders.base import TextEncoder, WrappedEncoder
from indexer.schemas import SUPPLIED

QUERY_CACHE_SIZE = 4096
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def text_key(text: str) -> bytes:
    """sha256 of the UTF-8 text (as `indexer.encoders.embedding_cache.text_digest`): 32 bytes of key per
    text, however long the text (a query may be a pasted document)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class LruCache(Generic[K, V]):
    """At most `maxsize` entries; a lookup refreshes an entry, an insert past the bound drops the least
    recently used. Safe to share between threads (one lock around each operation)."""

    def __init__(self, maxsize: int = QUERY_CACHE_SIZE) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be a positive number of entries, got {maxsize!r}")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries


# One per process: collections whose encoders share a namespace (two MiniLM collections, the old and new
# version during a reload) share the entries too.
QUERY_EMBEDDINGS: LruCache[tuple[str, bytes], np.ndarray] = LruCache(QUERY_CACHE_SIZE)


class QueryCachedEncoder(WrappedEncoder):
    """`inner` with `encode_queries` answered from `query_cache` where it can; every other call passes
    through. Only the texts missing from the cache reach `inner`, in one call."""

    def __init__(
        self, inner: TextEncoder, query_cache: LruCache[tuple[str, bytes], np.ndarray] | None = None
    ) -> None:
        super().__init__(inner)
        self.query_cache = QUERY_EMBEDDINGS if query_cache is None else query_cache

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        return self.inner.encode(texts, show_progress=show_progress)

    def warm_up(self) -> None:
        """Load the model now, not in the first request (past the cache, which may already hold the text).
        A collection of supplied vectors has no model to load."""
        if self.kind != SUPPLIED:
            self.inner.encode_queries(["warm-up"])

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors, float32 rows of unit length: cached ones, and the rest from `inner`."""
        namespace = self.namespace
        keys = [(namespace, text_key(text)) for text in texts]
        found = [self.query_cache.get(key) for key in keys]
        missing = [i for i, vector in enumerate(found) if vector is None]
        if missing:
            fresh = self.inner.encode_queries([texts[i] for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                vector = np.array(vector, dtype=np.float32)  # its own copy, not a view of `fresh`
                vector.flags.writeable = False
                self.query_cache.put(keys[i], vector)
                found[i] = vector
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(found)  # type: ignore[arg-type]  # every None was filled above
