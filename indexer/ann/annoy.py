"""Random-projection forest index from Spotify's annoy.

Annoy cannot add items once its trees are built, so this backend collects vectors until the first
``search`` or ``save`` (which builds the forest) and refuses ``add`` afterwards, including after
``load`` (``supports_incremental_add = False``). Saved files are memory-mapped by annoy on load.
``allowed`` is applied by over-fetching and filtering (annoy has no filter hook).

Reproducible builds: the forest is built by one thread (``n_jobs = 1``), so a ``seed`` gives the same trees
and the same ``annoy.ann``. With ``n_jobs`` > 1 (or -1: one per core) annoy splits the trees among threads
seeded ``seed + thread``: the trees then depend on the number of threads, and the threads number nodes and
append roots in whatever order they finish, so two builds on one machine write different files (measured:
three builds of 5,000 vectors with ``n_jobs = -1`` on two cores gave three different files, which answered
200 queries alike; nothing orders the roots, so that is not assured).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from annoy import AnnoyIndex as _Annoy

from indexer.ann.base import BaseIndex, SearchResult, padded

INDEX_FILE = "annoy.ann"


class AnnoyIndex(BaseIndex):
    """annoy forest. Build: ``n_trees``, ``seed``, ``n_jobs``; search: ``search_k`` (-1 = k * n_trees)."""

    name: ClassVar[str] = "annoy"
    defaults: ClassVar[dict[str, Any]] = {"n_trees": 50, "search_k": -1, "seed": 42, "n_jobs": 1}
    search_param_names: ClassVar[tuple[str, ...]] = ("search_k",)
    supports_incremental_add: ClassVar[bool] = False

    def __init__(self, dim: int, *, metric: str = "cosine", **params: Any) -> None:
        super().__init__(dim, metric=metric, **params)
        self._annoy_metric: Literal["angular", "euclidean"] = "angular" if metric == "cosine" else "euclidean"
        self._index = self._new()
        self._built = False

    def _new(self) -> _Annoy:
        index = _Annoy(self.dim, self._annoy_metric)
        index.set_seed(int(self._params["seed"]))
        return index

    def _count(self) -> int:
        return int(self._index.get_n_items())

    def _add(self, x: np.ndarray) -> None:
        if self._built:
            raise NotImplementedError(
                "annoy indices are immutable once built (first search/save) or loaded; "
                "create a new index and add all vectors before searching"
            )
        start = len(self)
        for i, vec in enumerate(x):
            self._index.add_item(start + i, vec)

    def _build(self) -> None:
        if not self._built:
            self._index.build(int(self._params["n_trees"]), n_jobs=int(self._params["n_jobs"]))
            self._built = True

    def _fetch(self, q: np.ndarray, m: int, k: int) -> SearchResult:
        """Top-``m`` candidates per query; ``search_k`` is scaled by m / k when over-fetching."""
        search_k = int(self._params["search_k"])
        if search_k > 0:
            search_k = math.ceil(search_k * m / k)
        rows, scores = padded(len(q), m)
        kind = "angular" if self.metric == "cosine" else "l2"
        for i, vec in enumerate(q):
            ids, dist = self._index.get_nns_by_vector(vec, m, search_k=search_k, include_distances=True)
            rows[i, : len(ids)] = ids
            scores[i, : len(ids)] = self._to_scores(np.asarray(dist), kind)
        return rows, scores

    def _search(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> SearchResult:
        self._build()
        if mask is None:
            return self._fetch(q, k, k)
        return self._postfilter(lambda qq, m: self._fetch(qq, m, k), q, k, mask)

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        for i, row in enumerate(rows):
            out[i] = self._index.get_item_vector(int(row))
        return out

    def _save_files(self, directory: Path) -> list[str]:
        self._build()
        path = directory / INDEX_FILE
        self._index.save(str(path))
        return [INDEX_FILE]

    def _load_files(self, directory: Path, meta: dict[str, Any]) -> None:
        self._index = self._new()
        self._index.load(str(directory / INDEX_FILE))
        self._built = True
