"""What features read from a loaded collection: a structural protocol, and per-collection lookups.

`ranker` never imports `retrieval`; `retrieval.collection.Collection` satisfies `FeatureCollection`
structurally. Optional parts (Word2Vec vectors, behaviour, keyword fields, numeric columns) may be absent
(None or empty); the operators that need them report themselves unavailable instead of failing per request.

`CollectionView` adds what several operators share and is costly to recompute: the external id -> row map,
stored-vector access, a per-row cache of item lengths in analysed terms and a bounded cache of the analysed
terms of a stored field (e.g. the title).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from indexer.analysis import make_analyzer
from indexer.config import RESERVED_RECORD_KEYS

FIELD_TERMS_CACHE = 100_000  # analysed field texts kept per field (least recently used are dropped)
RecordFetch = Callable[[Sequence[int]], list[dict | None]]  # rows -> their docstore records, in order


class FeatureCollection(Protocol):
    """The parts of a loaded collection that feature operators use."""

    ids: list[str]
    inverted: Any  # indexer.fields.FieldedBm25: query_terms, score_rows, fields
    vectors: Any  # indexer.ann.VectorIndex over transformer embeddings
    docstore: Any  # indexer.docstore.DocStore: get_many
    encoder: Any  # indexer.encoders.TextEncoder: encode_queries(texts) -> unit float32 rows
    text_vectors: Any  # indexer.text_vectors.TextVectors | None
    behaviour: Any  # indexer.behaviour.Behaviour | None
    keywords: Any  # indexer.keywords.Keywords
    columns: dict[str, np.ndarray]

    @property
    def popularity(self) -> np.ndarray | None: ...

    def __len__(self) -> int: ...


def stored_vectors(index: Any, rows: np.ndarray) -> np.ndarray:
    """The stored (unit, for cosine) vectors of `rows` in a vector index (`VectorIndex.reconstruct`)."""
    return np.asarray(index.reconstruct(np.asarray(rows, dtype=np.int64)), dtype=np.float32)


def vectors_available(index: Any) -> str | None:
    """None when `stored_vectors` works on `index`, else why not."""
    if index is None:
        return "no vector index"
    if len(index) == 0:
        return "the vector index is empty"
    try:
        stored_vectors(index, np.zeros(1, dtype=np.int64))
    except (ValueError, RuntimeError, NotImplementedError, AttributeError) as error:
        return str(error) or f"vector index {type(index).__name__} does not keep its vectors"
    return None


class CollectionView:
    """A collection plus shared lookups; one per (collection, extractor), safe to use from many threads."""

    def __init__(self, collection: FeatureCollection) -> None:
        self.collection = collection
        self._row_of: dict[str, int] | None = None
        self._lengths = np.full(len(collection), -1, dtype=np.int32)
        self._local = threading.local()
        self._field_terms: dict[str, OrderedDict[int, frozenset[str]]] = {}
        self._lock = threading.Lock()
        self._keyword_matrices: dict[str, Any] = {}
        self._item_times: tuple[np.ndarray, np.ndarray] | None = None
        self._vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        fields = getattr(collection.inverted, "fields", [])
        self.primary_analyzer: str = fields[0].analyzer if fields else "english"
        self.text_sources: tuple[str, ...] = tuple(fields[0].sources) if fields else ()

    @property
    def row_of(self) -> dict[str, int]:
        if self._row_of is None:
            self._row_of = {item_id: row for row, item_id in enumerate(self.collection.ids)}
        return self._row_of

    def rows_of(self, ids: Sequence[str]) -> np.ndarray:
        """Rows of external ids; ValueError naming the first unknown one."""
        row_of = self.row_of
        missing = [item_id for item_id in ids if item_id not in row_of]
        if missing:
            raise ValueError(f"unknown item id {missing[0]!r} in this collection")
        return np.fromiter((row_of[i] for i in ids), dtype=np.int64, count=len(ids))

    def ids_of(self, rows: np.ndarray) -> list[str]:
        ids = self.collection.ids
        return [ids[row] for row in np.asarray(rows).tolist()]

    def analyze(self, text: str) -> list[str]:
        """`text` in the primary field's analyzer (one analyzer per thread: they are not thread-safe)."""
        analyzer = getattr(self._local, "analyzer", None)
        if analyzer is None:
            analyzer = self._local.analyzer = make_analyzer(self.primary_analyzer)
        return analyzer(text)

    def record_text(self, record: dict | None) -> str:
        """The text the primary BM25 field indexes, rebuilt from a docstore record."""
        if not record:
            return ""
        if self.text_sources:
            return "\n".join(str(record.get(s) or "") for s in self.text_sources)
        texts = (v for k, v in record.items() if k not in RESERVED_RECORD_KEYS and isinstance(v, str))
        return "\n".join(texts)

    def records(self, rows: Sequence[int]) -> list[dict | None]:
        """The docstore records of `rows`, in order (None for a row without one), in one multi-get."""
        return self.collection.docstore.get_many(self.ids_of(np.asarray(rows, dtype=np.int64)))

    def item_lengths(self, rows: np.ndarray, records: RecordFetch | None = None) -> np.ndarray:
        """Analysed terms per item, computed from the docstore on first use and cached per row; `records`
        reads the records (default: `records`; a request passes its own, which reads each row once)."""
        rows = np.asarray(rows, dtype=np.int64)
        known = self._lengths[rows]
        todo = np.flatnonzero(known < 0)
        if todo.size:
            fetched = (records or self.records)(rows[todo].tolist())
            fresh = np.array([len(self.analyze(self.record_text(r))) for r in fetched], dtype=np.int32)
            self._lengths[rows[todo]] = fresh
            known[todo] = fresh
        return known.astype(np.float64)

    def keyword_matrix(self, name: str) -> Any:
        """Rows x values of keyword field `name` as a CSR 0/1 matrix (built once, from the postings)."""
        with self._lock:
            if name not in self._keyword_matrices:
                from scipy.sparse import csr_matrix

                keyword = self.collection.keywords.fields[name]
                offsets, rows = keyword.postings()
                codes = np.repeat(np.arange(len(keyword.values)), np.diff(offsets))
                shape = (len(self.collection), len(keyword.values))
                self._keyword_matrices[name] = csr_matrix((np.ones(len(rows)), (rows, codes)), shape=shape)
            return self._keyword_matrices[name]

    def item_event_times(self) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, times): the behaviour log's event times (epoch seconds) per item row, sorted, as CSR;
        built once from the per-user arrays."""
        with self._lock:
            if self._item_times is None:
                behaviour = self.collection.behaviour
                rows = np.asarray(behaviour.rows, dtype=np.int64)
                times = np.asarray(behaviour.timestamps, dtype=np.int64)
                order = np.lexsort((times, rows))
                indptr = np.zeros(len(self.collection) + 1, dtype=np.int64)
                np.cumsum(np.bincount(rows, minlength=len(self.collection)), out=indptr[1:])
                self._item_times = (indptr, times[order])
            return self._item_times

    def unit_vectors(self, space: str, index: Any, rows: np.ndarray) -> np.ndarray:
        """Stored vectors of `rows` in a vector index scaled to unit length (zero rows stay zero), cached
        per row: reading them back from an ANN index (hnswlib copies item by item) costs more than the rest
        of a request's features.

        The cache is a zero-filled (n, dim) array, which the OS backs with memory only for the rows written,
        so it grows with the items requests actually touch.
        """
        rows = np.asarray(rows, dtype=np.int64)
        with self._lock:
            if space not in self._vectors:
                dim = int(index.dim)
                self._vectors[space] = (
                    np.zeros((len(self.collection), dim), dtype=np.float32),
                    np.zeros(len(self.collection), dtype=bool),
                )
            cache, known = self._vectors[space]
        todo = rows[~known[rows]]
        if todo.size:
            todo = np.unique(todo)
            vectors = stored_vectors(index, todo)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            cache[todo] = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
            known[todo] = True  # after the vectors: a reader never sees a row marked before it is written
        return cache[rows]

    def has_field(self, name: str) -> bool:
        """Whether stored records carry text field `name` (judged on the first record)."""
        if not len(self.collection):
            return False
        record = self.collection.docstore.get_many(self.ids_of(np.zeros(1, dtype=np.int64)))[0] or {}
        return isinstance(record.get(name), str)

    def field_terms(
        self, rows: np.ndarray, name: str, records: RecordFetch | None = None
    ) -> list[frozenset[str]]:
        """Distinct analysed terms of stored text field `name` per row (empty when the record lacks it);
        `records` as in `item_lengths`."""
        rows_list = np.asarray(rows, dtype=np.int64).tolist()
        with self._lock:
            cache = self._field_terms.setdefault(name, OrderedDict())
            found = {row: cache[row] for row in rows_list if row in cache}
        todo = [row for row in rows_list if row not in found]
        if todo:
            fetched = (records or self.records)(todo)
            fresh = {
                row: frozenset(self.analyze(str((r or {}).get(name) or "")))
                for row, r in zip(todo, fetched, strict=True)
            }
            found.update(fresh)
            with self._lock:
                cache.update(fresh)
                while len(cache) > FIELD_TERMS_CACHE:
                    cache.popitem(last=False)
        return [found[row] for row in rows_list]
