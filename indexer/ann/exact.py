"""Exact (brute-force) vector search with numpy: the recall oracle and the small-corpus default.

Vectors live in a list of blocks (loaded blocks are memory-mapped ``.npy``; later adds are appended
as new in-memory blocks); scoring is a matmul per block of at most 65,536 rows followed by
``argpartition``, so memory stays bounded for large indices and batched queries.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from indexer.ann.base import BaseIndex, SearchResult, exact_search

VECTORS_FILE = "vectors.npy"


class ExactIndex(BaseIndex):
    """Exhaustive inner-product / L2 search; ``allowed`` restricts scoring to the allowed rows."""

    name: ClassVar[str] = "exact"

    def __init__(self, dim: int, *, metric: str = "cosine", **params: Any) -> None:
        super().__init__(dim, metric=metric, **params)
        self._blocks: list[np.ndarray] = []

    def _count(self) -> int:
        return sum(len(b) for b in self._blocks)

    def _add(self, x: np.ndarray) -> None:
        self._blocks.append(x)

    def _search(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> SearchResult:
        rows = np.arange(len(self)) if mask is None else np.flatnonzero(mask)
        return exact_search(q, k, self.metric, rows, self._scan)

    def _scan(self, rows: np.ndarray) -> np.ndarray:
        """Vectors of ascending ``rows`` read from the blocks without merging them: a view of a block when
        the rows are consecutive inside it (the unfiltered scan), else a gathered copy."""
        starts = np.cumsum([0, *(len(b) for b in self._blocks)])
        first, last = np.searchsorted(starts, rows[[0, -1]], side="right") - 1
        if first == last:
            block, lo = self._blocks[first], int(rows[0] - starts[first])
            if int(rows[-1] - rows[0]) + 1 == len(rows):
                return block[lo : lo + len(rows)]
            return block[rows - starts[first]]
        which = np.searchsorted(starts, rows, side="right") - 1
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        for b in range(first, last + 1):
            sel = which == b
            out[sel] = self._blocks[b][rows[sel] - starts[b]]
        return out

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        return self.vectors()[rows]

    def vectors(self) -> np.ndarray:
        """All stored vectors as one (n, dim) array (normalised for cosine); merges blocks if needed."""
        if not self._blocks:
            return np.empty((0, self.dim), dtype=np.float32)
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks)]
        return self._blocks[0]

    def _save_files(self, directory: Path) -> list[str]:
        target = directory / VECTORS_FILE
        data = self.vectors()
        source = getattr(data, "filename", None)
        if source is not None and target.exists() and Path(source).resolve() == target.resolve():
            return [VECTORS_FILE]  # saving back onto the memory-mapped file it was loaded from
        tmp = directory / f".{VECTORS_FILE}.tmp"
        with open(tmp, "wb") as f:
            np.save(f, data)
        os.replace(tmp, target)  # atomic: a memory-mapped previous version stays readable
        return [VECTORS_FILE]

    def _load_files(self, directory: Path, meta: dict[str, Any]) -> None:
        arr = np.load(directory / VECTORS_FILE, mmap_mode="r")
        if arr.ndim != 2 or arr.shape[1] != self.dim or arr.dtype != np.float32:
            raise ValueError(
                f"{directory / VECTORS_FILE}: expected float32 (n, {self.dim}), got {arr.dtype} {arr.shape}"
            )
        self._blocks = [arr] if len(arr) else []
