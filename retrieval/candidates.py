"""The values that flow through the online pipeline: a request, a recall branch and its output.

The merged candidate they become is `ranker.scoring.Candidate`, the shape the scorer reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What the recall branches see of a request. `allowed` is the row mask of the request's filters."""

    text: str
    k: int = 10
    user_id: str | None = None
    location: tuple[float, float] | None = None
    radius_km: float | None = None
    allowed: np.ndarray | None = field(default=None, compare=False)
    branches: frozenset[str] | None = None
    recent_rows: tuple[int, ...] = ()
    request_id: str | None = None  # the caller's id for the request; the ranker's feature log carries it
    # Query embeddings a branch computed, by space ("dense"), so the ranker reuses them instead of encoding
    # the text again. Written by the branch's thread before its result is handed back.
    query_vectors: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def admits(self, row: int) -> bool:
        return self.allowed is None or bool(self.allowed[row])

    def wants_text_free(self, branch: str) -> bool:
        """Gate of the branches that ignore the query text: they run for recommendation (no text), and for a
        search only when the request names them, so they never flood a search with unrelated items."""
        return not self.text.strip() or (self.branches is not None and branch in self.branches)


@dataclass(frozen=True, slots=True)
class BranchResult:
    """One recall branch's candidates: internal rows, best first, with the branch's own scores."""

    name: str
    rows: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls, name: str) -> BranchResult:
        return cls(name, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.rows)


class CandidateSource(Protocol):
    """A recall branch. `enabled` is its gate: whether it runs for this request at all.

    `inline`: True for a branch that is cheap, bounded by design and never blocks, so the pipeline runs it
    on the request thread instead of handing it to the thread pool (`retrieval.pipeline`); False: the
    pool."""

    name: str
    inline: bool

    def enabled(self, query: SearchQuery) -> bool: ...

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult: ...
