"""Top-k selection with a deterministic order: score descending, then row ascending."""

from __future__ import annotations

import numpy as np

EMPTY_ROWS = np.empty(0, dtype=np.int64)
EMPTY_SCORES = np.empty(0, dtype=np.float32)
_TINY = np.float32(np.finfo(np.float32).tiny)


def top_k(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best (row, score) pairs, best first, ties broken by the lower row; rows are unique."""
    n = len(rows)
    if n > k:
        keep = scores >= np.partition(scores, n - k)[n - k]
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))[:k]
    return rows[order].astype(np.int64, copy=False), scores[order].astype(np.float32, copy=False)


def top_k_dense(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of a dense score vector over all rows, keeping only scores > 0."""
    n = len(scores)
    threshold = max(np.partition(scores, n - k)[n - k], _TINY) if n > k else _TINY
    rows = np.flatnonzero(scores >= threshold)
    return top_k(rows, scores[rows], k)
