"""Rank fusion as named pure functions over branch results (after pyserini's fusion module).

Each function takes the branches' results and returns merged candidates, best first, keeping provenance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ranker.scoring import Candidate
from retrieval.candidates import BranchResult


def _collect(
    results: Sequence[BranchResult], contribution: Callable[[BranchResult], np.ndarray]
) -> list[Candidate]:
    merged: dict[int, Candidate] = {}
    for result in results:
        gains = contribution(result)
        for rank, (row, score, gain) in enumerate(
            zip(result.rows.tolist(), result.scores.tolist(), gains.tolist(), strict=True), start=1
        ):
            candidate = merged.get(row)
            if candidate is None:
                candidate = merged[row] = Candidate(row=row, fused_score=0.0)
            candidate.fused_score += gain
            candidate.ranks[result.name] = rank
            candidate.branch_scores[result.name] = score
    # Best fused score first; ties go to the better best rank, then the lower row: a deterministic order.
    return sorted(merged.values(), key=lambda c: (-c.fused_score, min(c.ranks.values()), c.row))


def rrf(
    results: Sequence[BranchResult],
    k: int = 60,
    weights: dict[str, float] | None = None,
    branch_k: dict[str, int] | None = None,
) -> list[Candidate]:
    """Reciprocal rank fusion: sum over branches of weight / (k + rank), rank starting at 1.

    `branch_k` overrides k per branch: a small k makes a branch's order lead (1/2, 1/3, 1/4, ... against
    at most 1/61 from a branch at k = 60), with the other branches breaking its ties and ranking the rest.
    """
    branch_k = branch_k or {}
    if k < 0 or any(value < 0 for value in branch_k.values()):
        raise ValueError(f"rrf k must be non-negative, got k={k}, branch_k={branch_k}")
    weights = weights or {}
    return _collect(
        results,
        lambda r: (
            weights.get(r.name, 1.0) / (branch_k.get(r.name, k) + np.arange(1, len(r) + 1, dtype=np.float64))
        ),
    )


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant (zero-range) list maps to all ones rather than dividing by zero."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    low, high = float(scores.min()), float(scores.max())
    if high - low <= 1e-12:
        return np.ones_like(scores)
    return (scores - low) / (high - low)


def weighted(results: Sequence[BranchResult], weights: dict[str, float] | None = None) -> list[Candidate]:
    """Weighted sum of min-max normalised branch scores (a branch with no weight counts 1)."""
    weights = weights or {}
    return _collect(results, lambda r: weights.get(r.name, 1.0) * minmax(r.scores))


FUSIONS: dict[str, Callable[..., list[Candidate]]] = {"rrf": rrf, "weighted": weighted}


def get_fusion(name: str) -> Callable[..., list[Candidate]]:
    try:
        return FUSIONS[name]
    except KeyError:
        raise ValueError(f"unknown fusion {name!r}; choose one of {sorted(FUSIONS)}") from None
