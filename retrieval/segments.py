"""Indices over consecutive segments of one row space: the shards of a sharded version
(`indexer.shards`), and the delta segment of items written after the build (`retrieval.delta`).

Segment i holds rows ``start_i .. start_i + len(segment_i) - 1`` of the collection. A search asks every
segment for its own top k under its slice of the allowed rows and merges them (ties by lower row, as one
index breaks them); a per-row read goes to the segment that owns the row. With BM25 segments built with
their corpus's statistics (`indexer.inverted.build.CorpusStats`) the merged top k is the unsharded index's.
The classes stand in for `indexer.inverted.InvertedIndex` and `indexer.ann.VectorIndex` by duck typing:
they answer the calls the branches, the service and the ranker features make.

A segment served elsewhere (`retrieval.ray_shards`) answers later: it offers ``submit_<call>`` next to
``<call>``, and every segment's call is under way before the first answer is awaited (`_begin`), so a
scatter takes as long as its slowest segment, not their sum. It may fail or be late: it raises
`SegmentUnavailable`, and the answer goes on without it (its rows neither found nor scored) and names it
among the request's degraded parts (`unavailable_segments`). Such segments may also offer `RowReads`: the
ranker's per-row reads of a request's candidates fetched in one call per segment before it ranks.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NamedTuple, Protocol

import numpy as np

from indexer.ann.base import exact_scores, padded, top_k
from indexer.inverted import InvertedIndex


class SegmentUnavailable(Exception):
    """A segment that could not answer (e.g. ``shard:2``: its replicas failed or were late)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} did not answer")
        self.name = name


_UNAVAILABLE: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("unavailable", default=None)


@contextmanager
def unavailable_segments() -> Iterator[set[str]]:
    """Collect the segments that could not answer within this block (and the threads it starts with a copy
    of its context): the request's degraded parts."""
    found: set[str] = set()
    token = _UNAVAILABLE.set(found)
    try:
        yield found
    finally:
        _UNAVAILABLE.reset(token)


def note_unavailable(error: SegmentUnavailable) -> None:
    found = _UNAVAILABLE.get()
    if found is not None:
        found.add(error.name)


def _begin(segment: Any, call: str, *args: Any, **kwargs: Any) -> Callable[[], Any]:
    """Start `segment`'s `call`; what is returned gives its answer (or raises `SegmentUnavailable`). A
    segment served elsewhere is asked now and answers when awaited; a local one answers now."""
    submit = getattr(segment, f"submit_{call}", None)
    try:
        if submit is not None:
            return submit(*args, **kwargs)  # type: ignore[no-any-return]
        answer = getattr(segment, call)(*args, **kwargs)
    except SegmentUnavailable as error:
        failure = error

        def fail() -> Any:
            raise failure

        return fail
    return lambda: answer


class RowReads(Protocol):
    """Reads of many rows at once from segments served elsewhere (`retrieval.ray_shards.ShardReads`)."""

    def batched(self, rows: np.ndarray, terms: dict[str, list[str]]) -> AbstractContextManager[None]:
        """Fetch the BM25 impacts of `terms` (analyzer -> tokens), the stored vectors and the records of
        `rows`, one call per segment that owns some, now; within the block, reads of them come from that
        fetch. A segment whose fetch fails is noted (`note_unavailable`) and not asked again in it."""
        ...


def as_field_index(index: SegmentedIndex) -> InvertedIndex:
    """`index` where a BM25 field's `InvertedIndex` goes (it answers the same calls)."""
    return index  # type: ignore[return-value]


class Segments:
    """Where each segment's rows start, and which segment owns a row."""

    def __init__(self, sizes: Sequence[int]) -> None:
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def slices(self) -> list[slice]:
        return [slice(int(a), int(b)) for a, b in zip(self.starts[:-1], self.starts[1:], strict=True)]

    def owners(self, rows: np.ndarray) -> np.ndarray:
        """The segment of each row."""
        return np.searchsorted(self.starts, rows, side="right") - 1


def _part(allowed: np.ndarray | None, part: slice) -> np.ndarray | None:
    """A segment's slice of a request's allowed-rows mask."""
    return None if allowed is None else allowed[part]


def _per_owner(
    segments: Sequence[Any], layout: Segments, rows: np.ndarray, call: str, *args: Any
) -> list[tuple[np.ndarray, Callable[[], Any]]]:
    """`call(*args, local rows)` started on every segment that owns some of `rows`: (its rows' mask, the
    answer)."""
    owners = layout.owners(rows)
    started = []
    for number, segment in enumerate(segments):
        mine = owners == number
        if mine.any():
            started.append((mine, _begin(segment, call, *args, rows[mine] - layout.starts[number])))
    return started


class SegmentedIndex:
    """One BM25 field over segments (each an `InvertedIndex`, or anything answering its calls)."""

    def __init__(self, segments: Sequence[Any]) -> None:
        self.segments = list(segments)
        self.layout = Segments([len(s) for s in self.segments])
        self.params = self.segments[0].params  # k1, b, the average length the scores use

    def __len__(self) -> int:
        return len(self.layout)

    def idf(self, term: str) -> float:
        return max(self._each(lambda segment: float(segment.idf(term))))

    def document_frequency(self, term: str) -> int:
        return max(self._each(lambda segment: int(segment.document_frequency(term))))

    def _each(self, read: Any) -> list[Any]:
        """`read` of every segment that answers (0 for one that cannot)."""
        values = [0]
        for segment in self.segments:
            try:
                values.append(read(segment))
            except SegmentUnavailable as error:
                note_unavailable(error)
        return values

    def search(
        self, query_tokens: list[str], k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        rows, scores = [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
        parts = self.layout.slices()
        answers = [
            _begin(segment, "search", query_tokens, k, allowed=_part(allowed, part))
            for segment, part in zip(self.segments, parts, strict=True)
        ]
        for answer, part in zip(answers, parts, strict=True):
            try:
                found, values = answer()
            except SegmentUnavailable as error:
                note_unavailable(error)
                continue
            rows.append(np.asarray(found, dtype=np.int64) + part.start)
            scores.append(np.asarray(values, dtype=np.float32))
        merged_rows, merged_scores = np.concatenate(rows), np.concatenate(scores)
        order = np.lexsort((merged_rows, -merged_scores))[:k]
        return merged_rows[order].astype(np.int64), merged_scores[order].astype(np.float32)

    def score_rows(self, query_tokens: list[str], rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.float32)
        for mine, answer in _per_owner(self.segments, self.layout, rows, "score_rows", query_tokens):
            try:
                out[mine] = answer()
            except SegmentUnavailable as error:  # its rows score 0, as if no term matched
                note_unavailable(error)
        return out


class ExactVectors:
    """An in-memory matrix of unit vectors searched exhaustively: a segment too small for an ANN index."""

    def __init__(self, vectors: np.ndarray, dim: int, params: dict[str, Any]) -> None:
        self.dim = dim
        self.params = params
        self._vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, dim)

    def __len__(self) -> int:
        return len(self._vectors)

    def search(
        self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = exact_scores(queries, self._vectors, str(self.params.get("metric", "cosine")))
        if allowed is not None:
            scores[:, ~allowed] = -np.inf
        position, best = top_k(scores, k)
        return np.where(np.isneginf(best), -1, position), best

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        return self._vectors[np.asarray(rows, dtype=np.int64)]


class SegmentedVectors:
    """A vector index over segments (ANN indices, or `ExactVectors`)."""

    def __init__(self, segments: Sequence[Any]) -> None:
        self.segments = [segment for segment in segments]
        self.layout = Segments([len(s) for s in self.segments])
        self.dim = int(self.segments[0].dim)
        self.params = self.segments[0].params

    def __len__(self) -> int:
        return len(self.layout)

    def search(
        self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        rows, scores = [], []
        started = [
            (part, _begin(segment, "search", queries, min(k, len(segment)), allowed=_part(allowed, part)))
            for segment, part in zip(self.segments, self.layout.slices(), strict=True)
            if len(segment)
        ]
        for part, answer in started:
            try:
                found, values = answer()
            except SegmentUnavailable as error:
                note_unavailable(error)
                continue
            rows.append(np.where(found >= 0, found + part.start, -1))
            scores.append(values)
        if not rows:
            return padded(len(queries), k)
        merged_rows, merged_scores = np.concatenate(rows, axis=1), np.concatenate(scores, axis=1)
        merged_scores = np.where(merged_rows >= 0, merged_scores, -np.inf)
        position, best = top_k(merged_scores, min(k, merged_scores.shape[1]))
        found = np.take_along_axis(merged_rows, position, axis=1)
        out_rows, out_scores = padded(len(queries), k)
        out_rows[:, : found.shape[1]] = np.where(np.isneginf(best), -1, found)
        out_scores[:, : best.shape[1]] = best
        return out_rows, out_scores

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(rows), self.dim), dtype=np.float32)
        for mine, answer in _per_owner(self.segments, self.layout, rows, "reconstruct"):
            try:
                out[mine] = answer()
            except SegmentUnavailable as error:  # its rows read as zero vectors
                note_unavailable(error)
        return out


class SegmentedDocStore:
    """Forward indices of segments, each read for the ids of its rows (`ids`: every row's id)."""

    def __init__(self, stores: Sequence[Any], sizes: Sequence[int], ids: Sequence[str]) -> None:
        self.stores = list(stores)
        layout = Segments(sizes)
        self._store_of = {
            item_id: int(s) for item_id, s in zip(ids, layout.owners(np.arange(len(ids))), strict=True)
        }

    def get(self, item_id: str) -> dict[str, Any] | None:
        return self.get_many([item_id])[0]

    def get_many(self, ids: Sequence[str]) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = [None] * len(ids)
        wanted: dict[int, list[int]] = {}
        for position, item_id in enumerate(ids):
            store = self._store_of.get(item_id)
            if store is not None:
                wanted.setdefault(store, []).append(position)
        started = [
            (positions, _begin(self.stores[store], "get_many", [ids[p] for p in positions]))
            for store, positions in wanted.items()
        ]
        for positions, answer in started:
            try:
                records = answer()
            except SegmentUnavailable as error:  # its items show without stored fields
                note_unavailable(error)
                continue
            for position, record in zip(positions, records, strict=True):
                out[position] = record
        return out

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and self.get(item_id) is not None

    def close(self) -> None:
        for store in self.stores:
            store.close()


class ShardedParts(NamedTuple):
    """A sharded version's segmented parts, as a shard opener returns them; `reads`: how to fetch a
    request's rows in one call per shard, when the shards are served elsewhere."""

    # duck-typed stand-ins for the collection's `FieldedBm25`, `VectorIndex` and `DocStore`
    inverted: Any  # an indexer.fields.FieldedBm25 over `SegmentedIndex` fields
    vectors: Any  # a SegmentedVectors
    docstore: Any  # a SegmentedDocStore
    reads: RowReads | None = None
