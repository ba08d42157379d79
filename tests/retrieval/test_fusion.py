"""Fusion functions on hand-computed runs."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.candidates import BranchResult
from retrieval.fusion import get_fusion, minmax, rrf, weighted


def _result(name: str, rows: list[int], scores: list[float]) -> BranchResult:
    return BranchResult(name, np.array(rows, dtype=np.int64), np.array(scores, dtype=np.float32))


def test_rrf_hand_computed() -> None:
    a = _result("bm25", [1, 2, 3], [9.0, 8.0, 7.0])
    b = _result("dense", [3, 1], [0.9, 0.8])
    fused = rrf([a, b], k=60)
    # row 1: 1/61 + 1/62 = 0.032522;  row 3: 1/63 + 1/61 = 0.032266;  row 2: 1/62 = 0.016129
    assert [c.row for c in fused] == [1, 3, 2]
    assert fused[0].fused_score == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1].fused_score == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2].fused_score == pytest.approx(1 / 62)
    assert fused[0].ranks == {"bm25": 1, "dense": 2}
    assert fused[1].ranks == {"bm25": 3, "dense": 1}
    assert fused[2].ranks == {"bm25": 2}
    assert fused[1].branch_scores == {"bm25": 7.0, "dense": pytest.approx(0.9)}


def test_rrf_weights_and_ties() -> None:
    a = _result("bm25", [1], [1.0])
    b = _result("dense", [2], [1.0])
    # equal contributions: tie broken by lower row
    assert [c.row for c in rrf([a, b])] == [1, 2]
    # dense weighted twice: 2/61 > 1/61
    assert [c.row for c in rrf([a, b], weights={"dense": 2.0})] == [2, 1]


def test_minmax_guards_zero_range() -> None:
    assert minmax(np.array([3.0, 3.0])).tolist() == [1.0, 1.0]
    assert minmax(np.array([1.0, 3.0, 2.0])).tolist() == [0.0, 1.0, 0.5]
    assert minmax(np.array([])).size == 0


def test_weighted_hand_computed() -> None:
    a = _result("bm25", [1, 2], [10.0, 5.0])  # normalised 1.0, 0.0
    b = _result("dense", [2, 3], [0.8, 0.4])  # normalised 1.0, 0.0
    fused = weighted([a, b], weights={"bm25": 0.5, "dense": 1.0})
    assert {c.row: c.fused_score for c in fused} == {1: 0.5, 2: 1.0, 3: 0.0}
    assert [c.row for c in fused] == [2, 1, 3]


def test_unknown_fusion_lists_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown fusion 'borda'.*rrf"):
        get_fusion("borda")


def test_rrf_branch_k_lets_one_branch_lead() -> None:
    text = _result("bm25", [7, 8, 9], [3.0, 2.0, 1.0])
    geo = _result("geo", [9, 8], [0.9, 0.5])
    fused = rrf([text, geo], k=60, branch_k={"geo": 1})
    # row 9: 1/63 + 1/2 = 0.5159;  row 8: 1/62 + 1/3 = 0.3495;  row 7: 1/61 = 0.0164
    assert [c.row for c in fused] == [9, 8, 7]
    assert fused[0].fused_score == pytest.approx(1 / 63 + 1 / 2)
    with pytest.raises(ValueError, match="non-negative"):
        rrf([geo], branch_k={"geo": -1})
