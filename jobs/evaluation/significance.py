"""Compare two runs query by query: a paired randomisation test and the queries that changed most.

The randomisation (permutation) test follows Smucker, Allan and Carterette (CIKM 2007): under the null
hypothesis the two systems are exchangeable on every query, so each per-query difference keeps or flips its
sign with probability 1/2. The two-sided p-value is the share of sign assignments whose mean difference is at
least as far from zero as the observed one. `scipy.stats.permutation_test` (paired: ``"samples"``) computes
it: over all 2^n assignments when `n_permutations` covers them (an exact p), else over `n_permutations`
seeded random ones, counting the observed assignment itself, p = (1 + #{|mean permuted| >= |mean observed|})
/ (1 + n_permutations), which is never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import permutation_test

PerQuery = Mapping[str, Mapping[str, float]]

_BATCH = 1000  # permutations drawn at a time, so memory stays at batch x queries


@dataclass(frozen=True, slots=True)
class PermutationTestResult:
    """Outcome of a paired randomisation test of system B against system A on one metric."""

    metric: str
    n_queries: int
    mean_a: float
    mean_b: float
    delta: float  # mean_b - mean_a
    p_value: float
    n_permutations: int
    seed: int


@dataclass(frozen=True, slots=True)
class QueryChange:
    """One query's metric value under runs A and B."""

    qid: str
    a: float
    b: float

    @property
    def delta(self) -> float:
        return self.b - self.a


def _paired_values(per_query_a: PerQuery, per_query_b: PerQuery, metric: str) -> tuple[list[str], np.ndarray]:
    """Query ids and an (n, 2) array of the metric under A and B; both runs must cover the same queries."""
    if set(per_query_a) != set(per_query_b):
        only_a = sorted(set(per_query_a) - set(per_query_b))[:5]
        only_b = sorted(set(per_query_b) - set(per_query_a))[:5]
        raise ValueError(f"runs A and B cover different queries: only in A {only_a}, only in B {only_b}")
    qids = sorted(per_query_a)
    if not qids:
        raise ValueError("no queries to compare")
    try:
        values = np.array([[per_query_a[q][metric], per_query_b[q][metric]] for q in qids], dtype=np.float64)
    except KeyError:
        raise ValueError(f"metric {metric!r} is missing; available: {sorted(per_query_a[qids[0]])}") from None
    return qids, values


def _absolute_mean_difference(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
    """|mean(B - A)| along `axis`: the test statistic."""
    return np.abs(np.mean(b - a, axis=axis))


def paired_randomization_test(
    per_query_a: PerQuery,
    per_query_b: PerQuery,
    metric: str,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> PermutationTestResult:
    """Two-sided paired randomisation test on `metric` between two runs' per-query values."""
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    _, values = _paired_values(per_query_a, per_query_b, metric)
    diffs = values[:, 1] - values[:, 0]
    # Swapping A and B on a query flips the sign of its difference; "greater" on |mean| is two-sided.
    test = permutation_test(
        (values[:, 0], values[:, 1]),
        _absolute_mean_difference,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_permutations,
        batch=_BATCH,
        alternative="greater",
        rng=np.random.default_rng(seed),
    )
    return PermutationTestResult(
        metric=metric,
        n_queries=int(diffs.size),
        mean_a=float(values[:, 0].mean()),
        mean_b=float(values[:, 1].mean()),
        delta=float(diffs.mean()),
        p_value=float(test.pvalue),
        n_permutations=n_permutations,
        seed=seed,
    )


def most_changed_queries(
    per_query_a: PerQuery, per_query_b: PerQuery, metric: str, n: int = 10
) -> list[QueryChange]:
    """The `n` queries whose metric moved most between A and B, largest |B - A| first (ties by query id).

    Queries whose value did not change are left out.
    """
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    qids, values = _paired_values(per_query_a, per_query_b, metric)
    changes = [
        QueryChange(qid, float(a), float(b)) for qid, (a, b) in zip(qids, values, strict=True) if a != b
    ]
    changes.sort(key=lambda change: (-abs(change.delta), change.qid))
    return changes[:n]
