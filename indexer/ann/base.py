"""The `VectorIndex` protocol and the shared machinery behind every ANN backend.

Conventions shared by all backends:

* Rows are numbered in add order from 0; external ids are kept by the caller beside the index.
* ``search`` returns ``(rows int64 (q, k), scores float32 (q, k))``, best first, higher is better,
  padded with ``-1`` / ``-inf`` when fewer than ``k`` rows qualify.
* Metric ``"cosine"``: vectors and queries are L2-normalised inside the index, score = inner product.
  Metric ``"l2"``: score = minus the Euclidean distance.
* ``allowed`` is an optional boolean mask over rows; when at least ``k`` allowed rows exist, ``k``
  results come back (backends retry exhaustively or fall back to exact scoring when the approximate
  pass finds fewer).
* ``save(directory)`` writes the backend files plus ``index.json`` naming the backend, and returns the
  file names; ``load_index`` in the registry reads that json to pick the class.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from indexer.inverted.topk import top_k as ordered_top_k

METRICS: tuple[str, ...] = ("cosine", "l2")
META_FILE = "index.json"
FORMAT_VERSION = 1
_EXACT_BLOCK_ROWS = 65_536

SearchResult = tuple[np.ndarray, np.ndarray]


@runtime_checkable
class VectorIndex(Protocol):
    """What the rest of searchrec relies on; every backend in the registry satisfies it."""

    name: ClassVar[str]
    supports_incremental_add: ClassVar[bool]
    search_param_names: ClassVar[tuple[str, ...]]
    dim: int
    metric: str

    @property
    def params(self) -> dict[str, Any]: ...

    def add(self, vectors: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> SearchResult: ...

    def set_search_params(self, **params: Any) -> None: ...

    def save(self, directory: Path) -> list[str]: ...

    @classmethod
    def load(cls, directory: Path) -> Self: ...

    def reconstruct(self, rows: np.ndarray) -> np.ndarray: ...

    def __len__(self) -> int: ...


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Return a float32 copy of ``x`` with unit-length rows (all-zero rows stay zero)."""
    x = np.array(x, dtype=np.float32, copy=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def padded(n_queries: int, k: int) -> SearchResult:
    """Empty result arrays: rows -1 and scores -inf."""
    return np.full((n_queries, k), -1, dtype=np.int64), np.full((n_queries, k), -np.inf, dtype=np.float32)


def exact_scores(queries: np.ndarray, vectors: np.ndarray, metric: str) -> np.ndarray:
    """Scores (q, n) of prepared queries against prepared vectors: higher is better."""
    sims = queries @ np.asarray(vectors, dtype=np.float32).T
    if metric == "cosine":
        return sims
    q_sq = np.einsum("ij,ij->i", queries, queries)[:, None]
    v_sq = np.einsum("ij,ij->i", vectors, vectors)[None, :]
    sq = np.maximum(q_sq + v_sq - 2.0 * sims, 0.0)
    return -np.sqrt(sq, out=sq)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column positions and values of the ``k`` best scores per row, best first, equal scores by lower
    position, also at the cut (so shards merged in row order tie as one index does; k <= n columns)."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.empty((scores.shape[0], 0), np.int64), np.empty((scores.shape[0], 0), np.float32)
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
        # rows where more than k columns reach the k-th score: which of the tied ones argpartition kept
        # is arbitrary, so keep the lowest positions among them
        for row in np.flatnonzero((scores >= kth).sum(axis=1) > k):
            reached = np.flatnonzero(scores[row] >= kth[row])
            part[row] = ordered_top_k(reached, scores[row, reached], k)[0]
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=-1)
    return np.take_along_axis(part, order, axis=1).astype(np.int64), np.take_along_axis(vals, order, axis=1)


def exact_search(
    queries: np.ndarray, k: int, metric: str, rows: np.ndarray, vectors: Callable[[np.ndarray], np.ndarray]
) -> SearchResult:
    """Brute-force top-k over ``rows`` (int64 row numbers), scored in chunks of at most 65,536 rows;
    ``vectors(chunk)`` returns the prepared vectors of a chunk of ``rows``."""
    best_rows, best_scores = padded(len(queries), k)
    for start in range(0, len(rows), _EXACT_BLOCK_ROWS):
        part = rows[start : start + _EXACT_BLOCK_ROWS]
        pos, vals = top_k(exact_scores(queries, vectors(part), metric), k)
        best_rows, best_scores = _merge(best_rows, best_scores, part[pos], vals, k)
    return best_rows, best_scores


def _merge(
    rows_a: np.ndarray, scores_a: np.ndarray, rows_b: np.ndarray, scores_b: np.ndarray, k: int
) -> SearchResult:
    rows = np.concatenate([rows_a, rows_b], axis=1)
    scores = np.concatenate([scores_a, scores_b], axis=1)
    pos, vals = top_k(scores, k)
    return np.take_along_axis(rows, pos, axis=1), vals


class BaseIndex(ABC):
    """Validation, normalisation, padding, filtering fallbacks and persistence shared by all backends.

    Subclasses set ``name``, ``defaults`` (build and search parameters) and ``search_param_names``,
    and implement ``_add``, ``_search``, ``_count``, ``_save_files`` and ``_load_files``.
    """

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}
    search_param_names: ClassVar[tuple[str, ...]] = ()
    supports_incremental_add: ClassVar[bool] = True
    """False when ``add`` is refused once the index was built, searched, saved or loaded."""
    load_overrides: ClassVar[dict[str, Any]] = {}
    """Saved parameters replaced on load (machine-specific choices such as ``use_gpu``)."""

    def __init__(self, dim: int, *, metric: str = "cosine", **params: Any) -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {list(METRICS)}")
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self._check_param_names(params, tuple(self.defaults))
        self.dim = int(dim)
        self.metric = metric
        self._params: dict[str, Any] = {**self.defaults, **params}

    # ------------------------------------------------------------------ public API
    @property
    def params(self) -> dict[str, Any]:
        """Build and search parameters (resolved values), for the artifact manifest."""
        return {"metric": self.metric, **self._params}

    def __len__(self) -> int:
        return self._count()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, n={len(self)}, params={self.params})"

    def add(self, vectors: np.ndarray) -> None:
        """Append float vectors of shape (n, dim); they get the next row numbers."""
        x = self._prepare(vectors, "vectors")
        if len(x):
            self._add(x)

    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> SearchResult:
        """Top-``k`` rows and scores per query (a single 1-D query is treated as one row)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        q = self._prepare(queries, "queries")
        mask = self._check_allowed(allowed)
        n_candidates = len(self) if mask is None else int(mask.sum())
        k_eff = min(int(k), n_candidates)
        rows, scores = padded(len(q), int(k))
        if k_eff == 0 or len(q) == 0:
            return rows, scores
        got_rows, got_scores = self._search(q, k_eff, mask)
        short = np.flatnonzero((got_rows >= 0).sum(axis=1) < k_eff)
        if short.size:
            fill_rows, fill_scores = self._complete(q[short], k_eff, mask)
            got_rows[short], got_scores[short] = fill_rows, fill_scores
        rows[:, :k_eff], scores[:, :k_eff] = got_rows, got_scores
        return rows, scores

    def set_search_params(self, **params: Any) -> None:
        """Change search-time parameters (e.g. ``ef``, ``nprobe``, ``search_k``); recorded in ``params``."""
        self._check_param_names(params, self.search_param_names)
        self._params.update(params)
        self._apply_search_params()

    def save(self, directory: Path) -> list[str]:
        """Write the index into ``directory`` (created if needed); return the file names written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = self._save_files(directory)
        meta = {
            "format_version": FORMAT_VERSION,
            "backend": self.name,
            "dim": self.dim,
            "metric": self.metric,
            "count": len(self),
            "params": self._params,
            "files": files,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return [*files, META_FILE]

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any] | None = None) -> Self:
        """Read an index written by ``save`` of this backend (``meta``: its parsed ``index.json``, if any)."""
        meta = read_meta(directory) if meta is None else meta
        if meta["backend"] != cls.name:
            raise ValueError(f"{directory} holds a {meta['backend']!r} index, not {cls.name!r}")
        index = cls(meta["dim"], metric=meta["metric"], **{**meta["params"], **cls.load_overrides})
        index._load_files(Path(directory), meta)
        if len(index) != meta["count"]:
            raise ValueError(f"{directory}: index holds {len(index)} rows, index.json says {meta['count']}")
        return index

    # ------------------------------------------------------------------ backend hooks
    @abstractmethod
    def _add(self, x: np.ndarray) -> None:
        """Add prepared (normalised for cosine) float32 C-contiguous vectors."""

    @abstractmethod
    def _search(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> SearchResult:
        """(q, k) rows/scores for prepared queries; k <= number of candidate rows."""

    @abstractmethod
    def _count(self) -> int: ...

    @abstractmethod
    def _save_files(self, directory: Path) -> list[str]: ...

    @abstractmethod
    def _load_files(self, directory: Path, meta: dict[str, Any]) -> None: ...

    def _apply_search_params(self) -> None:  # noqa: B027 - optional hook, most backends override it
        """Push ``self._params`` search values into the underlying library object (if any)."""

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        """Stored (prepared) vectors of ``rows``; used for exact completion of short results."""
        raise NotImplementedError

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of `rows` (normalised for cosine), e.g. to find items similar to an item."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.empty((0, self.dim), np.float32)
        if rows.min() < 0 or rows.max() >= len(self):
            raise ValueError(f"rows must be in [0, {len(self)}), got {rows.min()}..{rows.max()}")
        return np.asarray(self._vectors(rows), dtype=np.float32)

    def _complete(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> SearchResult:
        """Exact answer for queries whose approximate pass found fewer than ``k`` candidates."""
        rows = np.arange(len(self)) if mask is None else np.flatnonzero(mask)
        return exact_search(q, k, self.metric, rows, self._vectors)

    # ------------------------------------------------------------------ helpers for subclasses
    def _prepare(self, x: np.ndarray, what: str) -> np.ndarray:
        arr = np.asarray(x)
        if arr.ndim == 1 and what == "queries":
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"{what} must have shape (n, {self.dim}), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise ValueError(f"{what} must be real numbers, got dtype {arr.dtype}")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} contain NaN or infinite values")
        return normalize_rows(arr) if self.metric == "cosine" else arr

    def _check_allowed(self, allowed: np.ndarray | None) -> np.ndarray | None:
        if allowed is None:
            return None
        mask = np.asarray(allowed)
        if mask.dtype != np.bool_ or mask.shape != (len(self),):
            raise ValueError(
                f"allowed must be a boolean mask of shape ({len(self)},), got {mask.dtype} {mask.shape}"
            )
        return mask

    def _check_param_names(self, params: dict[str, Any], allowed: tuple[str, ...]) -> None:
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for {self.name!r}; allowed: {sorted(allowed)}")

    def _to_scores(self, raw: np.ndarray, kind: str) -> np.ndarray:
        """Convert library distances to scores. kind: 'ip', 'one_minus_ip', 'sq_l2', 'l2', 'angular'."""
        raw = np.asarray(raw, dtype=np.float32)
        if kind == "ip":
            return raw
        if kind == "one_minus_ip":
            return 1.0 - raw
        if kind == "sq_l2":
            return -np.sqrt(np.maximum(raw, 0.0))
        if kind == "l2":
            return -raw
        if kind == "angular":
            return 1.0 - raw * raw / 2.0
        raise ValueError(f"unknown distance kind {kind!r}")

    def _postfilter(
        self, fetch: Callable[[np.ndarray, int], SearchResult], q: np.ndarray, k: int, mask: np.ndarray
    ) -> SearchResult:
        """Over-fetch candidates with ``fetch(queries, m)`` and keep allowed ones, growing ``m`` until each
        query has ``k`` allowed rows or every row was fetched."""
        n, n_allowed = len(self), int(mask.sum())
        out_rows, out_scores = padded(len(q), k)
        todo = np.arange(len(q))
        m = min(n, max(2 * k, math.ceil(1.5 * k * n / max(n_allowed, 1))))
        while todo.size:
            rows, scores = fetch(q[todo], m)
            keep = (rows >= 0) & mask[np.maximum(rows, 0)]
            order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
            sel_rows = np.take_along_axis(np.where(keep, rows, -1), order, axis=1)
            sel_scores = np.take_along_axis(np.where(keep, scores, -np.inf), order, axis=1)
            width = sel_rows.shape[1]
            out_rows[todo, :width], out_scores[todo, :width] = sel_rows, sel_scores.astype(np.float32)
            if m >= n:
                break
            todo = todo[keep.sum(axis=1) < k]
            m = min(n, m * 4)
        return out_rows, out_scores


def read_meta(directory: Path) -> dict[str, Any]:
    """Parse ``index.json`` in ``directory``."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise ValueError(f"no {META_FILE} in {directory}: not a saved vector index")
    meta: dict[str, Any] = json.loads(path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported format_version {meta.get('format_version')!r}")
    return meta
