"""The scoring interface the learned ranker plugs into, and the merged candidate it scores.

A `Scorer` annotates every merged `Candidate` (a row with its provenance in the recall branches) with a
score. It never drops or reorders candidates itself; the pipeline sorts by the scores it returns. It sees
the request through a `RankingContext` (the query text and, when the request has them, the user, the
location, a request id and query embeddings a branch already computed), because a learned ranker's
features depend on more than the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class RankingContext:
    """What a scorer knows of the request besides its candidates."""

    text: str
    user_id: str | None = None
    location: tuple[float, float] | None = None  # (lat, lon) in degrees
    request_id: str | None = None
    items: tuple[int, ...] = ()  # rows of the items a recommendation request names, newest last
    query_vectors: dict[str, np.ndarray] | None = field(default=None, compare=False, repr=False)
    """Query embeddings the recall branches already computed, by space ("dense", "word2vec")."""

    @classmethod
    def of(cls, request: object) -> RankingContext:
        """The context of any request object with a `text` (and optionally user_id, location, request_id)."""
        location = getattr(request, "location", None)
        return cls(
            text=str(getattr(request, "text", "")),
            user_id=getattr(request, "user_id", None),
            location=(float(location[0]), float(location[1])) if location is not None else None,
            request_id=getattr(request, "request_id", None),
            items=tuple(int(row) for row in getattr(request, "recent_rows", ())),
            query_vectors=getattr(request, "query_vectors", None),
        )


@dataclass(slots=True)
class Candidate:
    """A merged candidate, the one shape every stage passes on: the fusion makes it, a scorer reads it, the
    feature log writes it and reads it back. `ranks` and `branch_scores`: the 1-based rank and the score in
    every recall branch that found it (its provenance); `score`: what the scorer gave it, the answer's order
    (set by the pipeline once scored)."""

    row: int
    fused_score: float
    ranks: dict[str, int] = field(default_factory=dict)
    branch_scores: dict[str, float] = field(default_factory=dict)
    score: float = 0.0


def branches_found(candidates: Sequence[Candidate]) -> set[str]:
    """The recall branches that found at least one of the candidates."""
    return {name for c in candidates for name in c.ranks}


@dataclass(frozen=True, slots=True)
class Scored:
    """A scorer's answer for one request: one score per candidate, with `explain` each candidate's values
    it scored from, and `fallback`, set when the scorer answered with the fusion order instead of its own,
    saying why (the reason a caller reads in `explain`)."""

    scores: np.ndarray
    features: list[dict[str, float]] | None = None
    fallback: str | None = None


class Scorer(Protocol):
    """What the pipeline calls: `score_explained` once per request that has candidates.

    A scorer that does not `apply` to a request (a learned ranker outside its task or training regime) still
    answers it, in the fusion order, and says why in `Scored.fallback`; the pipeline then reports the fusion
    order as what ordered the answer. `ranker.learned.LearnedScorer` is the learned one; `FusionScorer`
    keeps the merge's order.
    """

    name: str
    version: str

    def applies(self, context: RankingContext, candidates: Sequence[Candidate]) -> bool:
        """Whether this request is ranked by the scorer's own scores (False: it gets the fusion order)."""
        ...

    def score(self, context: RankingContext, candidates: Sequence[Candidate]) -> np.ndarray:
        """One score per candidate, in the order given; higher is better."""
        ...

    def score_explained(
        self, context: RankingContext, candidates: Sequence[Candidate], *, explain: bool
    ) -> Scored:
        """The scores of `score` and, with `explain`, each candidate's values the scorer read (None when
        it reads none of its own), with `fallback` set when it answered in the fusion order."""
        ...


class FusionScorer:
    """Passes the fusion score through unchanged: the ranking is the merge's own. It applies to every
    request and has no values of its own to explain."""

    name = "fusion"
    version = "1"

    def applies(self, context: RankingContext, candidates: Sequence[Candidate]) -> bool:
        return True

    def score(self, context: RankingContext, candidates: Sequence[Candidate]) -> np.ndarray:
        return np.fromiter((c.fused_score for c in candidates), dtype=np.float64, count=len(candidates))

    def score_explained(
        self, context: RankingContext, candidates: Sequence[Candidate], *, explain: bool
    ) -> Scored:
        return Scored(self.score(context, candidates))
