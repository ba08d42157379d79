"""The scoring interface the learned ranker plugs into.

A `Scorer` annotates every merged candidate with a score. It never drops or reorders candidates itself; the
pipeline sorts by the scores it writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Scoreable(Protocol):
    fused_score: float
    ranks: dict[str, int]
    branch_scores: dict[str, float]


class Scorer(Protocol):
    name: str
    version: str

    def score(self, query: str, candidates: Sequence[Scoreable]) -> np.ndarray:
        """One score per candidate, in the order given; higher is better."""
        ...


class FusionScorer:
    """Passes the fusion score through unchanged: the ranking is the merge's own."""

    name = "fusion"
    version = "1"

    def score(self, query: str, candidates: Sequence[Scoreable]) -> np.ndarray:
        return np.fromiter((c.fused_score for c in candidates), dtype=np.float64, count=len(candidates))
