"""HNSW graph index from faiss (IndexHNSWFlat, CPU only).

Same graph family as the hnswlib backend; useful to compare implementations and to keep a
faiss-only deployment. ``allowed`` is applied inside the graph walk with an ``IDSelectorBitmap``;
queries for which the walk finds fewer than ``k`` allowed rows are answered exactly from the
flat storage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import faiss as _faiss_module
import numpy as np

from indexer.ann.base import BaseIndex, SearchResult, padded

INDEX_FILE = "faiss_hnsw.index"
faiss: Any = _faiss_module  # the bundled stubs miss SearchParametersHNSW and the numpy-friendly wrappers


class FaissHnswIndex(BaseIndex):
    """faiss IndexHNSWFlat. Build: ``M``, ``ef_construction``; search: ``ef``."""

    name: ClassVar[str] = "faiss_hnsw"
    defaults: ClassVar[dict[str, Any]] = {"M": 32, "ef_construction": 200, "ef": 64}
    search_param_names: ClassVar[tuple[str, ...]] = ("ef",)

    def __init__(self, dim: int, *, metric: str = "cosine", **params: Any) -> None:
        super().__init__(dim, metric=metric, **params)
        metric_type = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
        self._index = faiss.IndexHNSWFlat(self.dim, int(self._params["M"]), metric_type)
        self._index.hnsw.efConstruction = int(self._params["ef_construction"])
        self._apply_search_params()

    def _count(self) -> int:
        return int(self._index.ntotal)

    def _add(self, x: np.ndarray) -> None:
        self._index.add(x)

    def _apply_search_params(self) -> None:
        self._index.hnsw.efSearch = int(self._params["ef"])

    def _search(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> SearchResult:
        if len(self) == 0:
            return padded(len(q), k)
        params = faiss.SearchParametersHNSW(efSearch=max(int(self._params["ef"]), k))
        if mask is not None:
            params.sel = faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little"))
        dist, rows = self._index.search(q, k, params=params)
        scores = self._to_scores(dist, "ip" if self.metric == "cosine" else "sq_l2")
        return rows.astype(np.int64), np.where(rows >= 0, scores, -np.inf).astype(np.float32)

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return self._index.reconstruct_batch(rows.astype(np.int64))

    def _save_files(self, directory: Path) -> list[str]:
        faiss.write_index(self._index, str(directory / INDEX_FILE))
        return [INDEX_FILE]

    def _load_files(self, directory: Path, meta: dict[str, Any]) -> None:
        index = faiss.read_index(str(directory / INDEX_FILE))
        if index.d != self.dim:
            raise ValueError(f"{directory / INDEX_FILE}: dimension {index.d}, index.json says {self.dim}")
        self._index = index
        self._apply_search_params()
