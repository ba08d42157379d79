"""The compiled search engine of `InvertedIndex`: argument packing and per-thread scratch for the kernels.

One call into :mod:`indexer.inverted.kernels` per query, or per batch of queries. The kernels release the
GIL, so threads search one index concurrently, each with its own accumulator.
"""

from __future__ import annotations

import threading

import numpy as np

from indexer.inverted import kernels

# Tier pruning is tried on collections of at least this many documents, for queries with more than
# EXHAUSTIVE_MAX_POSTINGS postings (query tokens' document frequencies summed); other queries, and those
# pruning gives up on, add every posting, then rank the whole accumulator when postings x DENSE_RATIO reach
# the document count, else only the touched rows.
PRUNE_MIN_DOCS = 1 << 17
EXHAUSTIVE_MAX_POSTINGS = 20_000
DENSE_RATIO = 8
# Pruning gives up once phase 1 has touched more than 1/TOUCH_SHARE of the documents, or when completing
# its candidates would take more than (postings left + documents) / PROBE_COST searches; it scans a tier
# rather than searching it when the tier is shorter than SCAN_RATIO x the candidates.
TOUCH_SHARE = 64
PROBE_COST = 16
SCAN_RATIO = 8
_NO_MASK = np.zeros(0, dtype=np.bool_)


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view, so that every index (memory-mapped or built in memory) uses one compiled
    specialisation of each kernel."""
    view = a.view(np.ndarray)
    view.flags.writeable = False
    return view


class CompiledSearch:
    """Exact top-k search over one index's arrays through the numba kernels."""

    def __init__(self, n_docs: int, arrays: dict[str, np.ndarray]) -> None:
        self._n = n_docs
        keys = ("indptr", "term_segments", "segment_bounds", "segment_max", "doc_ids", "impacts")
        self._arrays = tuple(_readonly(arrays[key]) for key in keys)
        self._arrays = (*self._arrays[:4], self._arrays[4].view(np.uint32), self._arrays[5])
        self._local = threading.local()

    def warm(self) -> None:
        """Compile the kernels for this index's array types (or load them from numba's cache) now, so
        that the first query does not pay for it."""
        self.search([], 1, None)
        self.search_batch(np.zeros(0, dtype=np.int64), [0], 1)

    def _scratch(self) -> tuple[np.ndarray, ...]:
        """This thread's scratch arrays for the kernels (see `kernels`), zeros between queries."""
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            n = self._n
            acc, block_max = np.zeros(n, dtype=np.float32), np.zeros(n // 64 + 1, dtype=np.int32)
            touched, bits, slots = np.zeros(n + 1, np.int32), np.zeros(n, np.uint32), np.zeros(n, np.int32)
            paths = np.zeros(4, dtype=np.int64)
            scratch = (acc, acc.view(np.int32), touched, bits, slots, block_max, paths)
            self._local.scratch = scratch
        return scratch

    def path_counts(self) -> dict[str, int]:
        """How many of this thread's queries each search path answered (pruning's give-ups also count
        under the path that then answered them): for tests and benchmarks."""
        paths = self._scratch()[6].tolist()
        return dict(zip(("touched", "dense", "pruned", "pruning_gave_up"), paths, strict=True))

    @staticmethod
    def _limits() -> tuple[int, int, int, int, int, int]:
        return PRUNE_MIN_DOCS, EXHAUSTIVE_MAX_POSTINGS, DENSE_RATIO, TOUCH_SHARE, PROBE_COST, SCAN_RATIO

    def search(self, tids: list[int], k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows and scores of one query given as term ids in query order (-1: not in the
        vocabulary)."""
        k = min(k, self._n)
        rows, scores = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.float32)
        n = kernels.search(
            np.array(tids, dtype=np.int64),
            _NO_MASK if mask is None else _readonly(mask),
            self._arrays,
            self._scratch(),
            self._limits(),
            rows,
            scores,
        )
        return (rows, scores) if n == k else (rows[:n], scores[:n])

    def search_batch(
        self, flat: np.ndarray, lengths: list[int], k: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`search` for each query, in one compiled call: ``flat`` is every query's term ids
        (int64, -1: not in the vocabulary) concatenated, ``lengths`` how many belong to each query."""
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        rows, scores, counts = kernels.search_batch(
            flat, offsets, min(k, self._n), self._arrays, self._scratch(), self._limits()
        )
        full = rows.shape[1]  # iterating a 2-d array yields its rows as views, cheaper than slicing
        triples = zip(rows, scores, counts.tolist(), strict=True)
        return [(r, s) if n == full else (r[:n], s[:n]) for r, s, n in triples]
