"""HNSW graph index from faiss (IndexHNSWFlat, CPU only).

Same graph family as the hnswlib backend; useful to compare implementations and to keep a
faiss-only deployment. ``allowed`` is applied inside the graph walk with an ``IDSelectorBitmap``;
queries for which the walk finds fewer than ``k`` allowed rows are answered exactly from the
flat storage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from indexer.ann._faiss import faiss, id_selector, metric_type, read_index, search_result, write_index
from indexer.ann.base import BaseIndex, SearchResult

INDEX_FILE = "faiss_hnsw.index"


class FaissHnswIndex(BaseIndex):
    """faiss IndexHNSWFlat. Build: ``M``, ``ef_construction``; search: ``ef``."""

    name: ClassVar[str] = "faiss_hnsw"
    defaults: ClassVar[dict[str, Any]] = {"M": 32, "ef_construction": 200, "ef": 64}
    search_param_names: ClassVar[tuple[str, ...]] = ("ef",)

    def __init__(self, dim: int, *, metric: str = "cosine", **params: Any) -> None:
        super().__init__(dim, metric=metric, **params)
        self._index = faiss.IndexHNSWFlat(self.dim, int(self._params["M"]), metric_type(metric))
        self._index.hnsw.efConstruction = int(self._params["ef_construction"])

    def _count(self) -> int:
        return int(self._index.ntotal)

    def _add(self, x: np.ndarray) -> None:
        self._index.add(x)

    def _search(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> SearchResult:
        # ``ef`` (at least k) goes to faiss with each search, so ``set_search_params`` needs no hook
        params = faiss.SearchParametersHNSW(efSearch=max(int(self._params["ef"]), k))
        if mask is not None:
            params.sel = id_selector(mask)
        dist, rows = self._index.search(q, k, params=params)
        return search_result(self, dist, rows)

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        return self._index.reconstruct_batch(rows.astype(np.int64))

    def _save_files(self, directory: Path) -> list[str]:
        return write_index(self._index, directory / INDEX_FILE)

    def _load_files(self, directory: Path, meta: dict[str, Any]) -> None:
        self._index = read_index(directory / INDEX_FILE, self.dim)
