"""Tests for the ranker's domain profile: ranges from training requests, calibrated on validation ones."""

from __future__ import annotations

import numpy as np
import pytest

from ranker.domain import CANDIDATES, DomainProfile, request_statistics

NAMES = ["query_len", "bm25_ratio", "constant"]


def _requests(rng: np.random.Generator, count: int, query_len: float) -> list[np.ndarray]:
    requests = []
    for _ in range(count):
        n = int(rng.integers(80, 120))
        matrix = np.column_stack(
            [np.full(n, query_len + rng.normal(0, 0.1)), rng.uniform(0, 1, n), np.zeros(n)]
        )
        requests.append(matrix)
    return requests


def test_request_statistics_are_feature_means_and_the_candidate_count() -> None:
    matrix = np.array([[1.0, 0.0, 0.0], [3.0, 1.0, 0.0]])
    stats = request_statistics(NAMES, matrix)
    assert stats == {
        "mean:query_len": 2.0, "mean:bm25_ratio": 0.5, "mean:constant": 0.0,
        CANDIDATES: pytest.approx(np.log1p(2)),
    }  # fmt: skip


def test_profile_accepts_requests_like_its_training_and_refuses_others() -> None:
    rng = np.random.default_rng(7)
    profile = DomainProfile.fit(NAMES, _requests(rng, 400, 2.5), _requests(rng, 200, 2.5))
    assert "mean:constant" not in profile.low  # never varied in training: it tells nothing
    assert profile.refused_valid_share <= 0.02
    like = _requests(rng, 200, 2.5)
    refused = [profile.refusal(NAMES, m) for m in like]
    assert sum(r is not None for r in refused) <= 10  # about 2% of requests like the training ones
    unlike = np.column_stack(
        [np.full(20, 0.7), np.full(20, 0.99), np.zeros(20)]
    )  # short query, few candidates
    reason = profile.refusal(NAMES, unlike)
    assert reason is not None and reason.startswith("out of domain: ")
    assert "mean:query_len" in reason and CANDIDATES in reason


def test_profile_round_trips_through_json() -> None:
    rng = np.random.default_rng(1)
    profile = DomainProfile.fit(NAMES, _requests(rng, 50, 2.0), _requests(rng, 50, 2.0))
    assert DomainProfile.model_validate_json(profile.model_dump_json()) == profile


def test_profile_needs_training_requests() -> None:
    with pytest.raises(ValueError, match="at least one training request"):
        DomainProfile.fit(NAMES, [], [])
