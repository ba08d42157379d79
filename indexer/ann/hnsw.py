"""HNSW graph index backed by hnswlib.

Cosine uses hnswlib's ``ip`` space on vectors normalised by the base class (score = inner product);
``l2`` uses hnswlib's squared-L2 space (score = minus the Euclidean distance). ``allowed`` is applied
inside the graph search through hnswlib's filter callback; the rare query for which the graph walk
cannot find ``k`` allowed rows is answered exactly from the stored vectors.

Reproducible builds: vectors are inserted one at a time, in row order, with the level generator seeded by
``seed``, so the same vectors and parameters give the same graph (identical ``hnsw.bin``). hnswlib's
multi-threaded insertion does not: each thread draws levels and links its rows as the scheduler lets it
(measured: three builds of 5,000 vectors with two threads gave three different graphs and answers).
``num_threads`` therefore applies to searches only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import hnswlib
import numpy as np

from indexer.ann.base import BaseIndex, SearchResult, padded

INDEX_FILE = "hnsw.bin"
_MIN_CAPACITY = 1024


class HnswIndex(BaseIndex):
    """hnswlib HNSW. Build: ``M``, ``ef_construction``, ``seed`` (single-threaded); search: ``ef``,
    ``num_threads``."""

    name: ClassVar[str] = "hnsw"
    defaults: ClassVar[dict[str, Any]] = {
        "M": 16,
        "ef_construction": 200,
        "ef": 64,
        "seed": 100,
        "num_threads": -1,
    }
    search_param_names: ClassVar[tuple[str, ...]] = ("ef", "num_threads")

    def __init__(self, dim: int, *, metric: str = "cosine", **params: Any) -> None:
        super().__init__(dim, metric=metric, **params)
        self._space = "ip" if metric == "cosine" else "l2"
        self._index: hnswlib.Index | None = None

    def _new_index(self, capacity: int) -> hnswlib.Index:
        index = hnswlib.Index(space=self._space, dim=self.dim)
        index.init_index(
            max_elements=capacity,
            M=int(self._params["M"]),
            ef_construction=int(self._params["ef_construction"]),
            random_seed=int(self._params["seed"]),
        )
        return index

    def _count(self) -> int:
        return 0 if self._index is None else int(self._index.get_current_count())

    def _add(self, x: np.ndarray) -> None:
        start = len(self)
        needed = start + len(x)
        if self._index is None:
            self._index = self._new_index(max(needed, _MIN_CAPACITY))
        elif needed > self._index.get_max_elements():
            self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
        self._apply_search_params()
        labels = np.arange(start, needed, dtype=np.int64)
        self._index.add_items(x, labels, num_threads=1)  # one graph per seed (module docstring)

    def _apply_search_params(self) -> None:
        if self._index is not None:
            self._index.set_ef(int(self._params["ef"]))
            self._index.set_num_threads(int(self._params["num_threads"]))

    def _search(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> SearchResult:
        assert self._index is not None  # BaseIndex.search never asks an empty index
        # hnswlib calls the filter once per visited label: index a zero-copy view of the mask (Python bools)
        filt = None if mask is None else np.ascontiguousarray(mask).data.__getitem__
        threads = int(self._params["num_threads"])
        try:
            labels, dist = self._index.knn_query(q, k=k, num_threads=threads, filter=filt)
        except RuntimeError:  # some query found fewer than k rows: retry one by one, pad the short ones
            rows, scores = padded(len(q), k)
            for i in range(len(q)):
                try:
                    labels, dist = self._index.knn_query(q[i : i + 1], k=k, num_threads=1, filter=filt)
                except RuntimeError:
                    continue
                rows[i], scores[i] = labels[0], self._distance_to_score(dist[0])
            return rows, scores
        return labels.astype(np.int64), self._distance_to_score(dist)

    def _distance_to_score(self, dist: np.ndarray) -> np.ndarray:
        return self._to_scores(dist, "one_minus_ip" if self.metric == "cosine" else "sq_l2")

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        assert self._index is not None  # rows are non-empty and in range, so the index holds rows
        return np.asarray(self._index.get_items(rows.astype(np.int64)), dtype=np.float32)

    def _save_files(self, directory: Path) -> list[str]:
        if self._index is None:
            self._index = self._new_index(_MIN_CAPACITY)
        self._index.save_index(str(directory / INDEX_FILE))
        return [INDEX_FILE]

    def _load_files(self, directory: Path, meta: dict[str, Any]) -> None:
        index = hnswlib.Index(space=self._space, dim=self.dim)
        index.load_index(str(directory / INDEX_FILE), max_elements=max(int(meta["count"]), _MIN_CAPACITY))
        self._index = index
        self._apply_search_params()
