"""Recommendation evaluation: leave-last-out split, HR/NDCG/MRR/coverage and the two baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.events import read_events
from indexer.schemas import EventSchema
from jobs.evaluation.recommend import (
    InteractionMatrix,
    evaluate_baselines,
    evaluate_recommendations,
    leave_last_out,
    recommend_item_knn,
    recommend_popular,
    streaming_split,
)

# u3's two events share a timestamp: the larger item id ("i3") is the later one.
EVENTS = [
    ("u1", "i2", 2.0), ("u1", "i1", 1.0), ("u1", "i3", 3.0),
    ("u2", "i1", 1.0), ("u2", "i3", 2.0), ("u2", "i2", 5.0),
    ("u3", "i3", 1.0), ("u3", "i2", 1.0),
    ("u4", "i4", 1.0),  # a single event: not evaluated, still part of the history
    ("u5", "i2", 1.0), ("u5", "i4", 2.0), ("u5", "i1", 3.0),
]  # fmt: skip
# History: u1 {i1,i2}, u2 {i1,i3}, u3 {i2}, u4 {i4}, u5 {i2,i4}. Held out: u1 i3, u2 i2, u3 i3, u5 i1.


def test_leave_last_out() -> None:
    split = leave_last_out(EVENTS)
    assert split.held_out == {"u1": "i3", "u2": "i2", "u3": "i3", "u5": "i1"}
    assert [(u, i) for u, i, _ in split.history] == [
        ("u1", "i1"), ("u1", "i2"), ("u2", "i1"), ("u2", "i3"), ("u3", "i2"), ("u4", "i4"), ("u5", "i2"),
        ("u5", "i4"),
    ]  # fmt: skip
    assert leave_last_out(list(reversed(EVENTS))) == split  # input order never matters


def test_leave_last_n_out_keeps_one_history_event_per_user() -> None:
    split = leave_last_out(EVENTS, n=2)
    assert split.targets == {"u1": ["i2", "i3"], "u2": ["i3", "i2"], "u3": ["i3"], "u5": ["i4", "i1"]}
    assert split.held_out == {"u1": "i3", "u2": "i2", "u3": "i3", "u5": "i1"}  # still the last one
    assert [(u, i) for u, i, _ in split.history] == [
        ("u1", "i1"),
        ("u2", "i1"),
        ("u3", "i2"),
        ("u4", "i4"),
        ("u5", "i2"),
    ]
    assert leave_last_out(EVENTS).targets == {u: [i] for u, i in split.held_out.items()}
    with pytest.raises(ValueError, match="at least one event"):
        leave_last_out(EVENTS, n=0)


def test_streaming_split_sits_between_the_two_leave_last_out_histories() -> None:
    split = streaming_split(EVENTS)
    assert split.held_out == leave_last_out(EVENTS).held_out
    assert split.base == leave_last_out(EVENTS, n=2).history
    # The second-to-last event of every user with three or more; u3 (two events) streams none.
    assert split.streamed == [("u1", "i2", 2.0), ("u2", "i3", 2.0), ("u5", "i4", 2.0)]
    assert sorted(split.base + split.streamed) == sorted(leave_last_out(EVENTS).history)
    assert streaming_split(list(reversed(EVENTS))) == split  # input order never matters


def test_popularity_baseline() -> None:
    split = leave_last_out(EVENTS)
    data = InteractionMatrix.from_events(split.history)
    recs = recommend_popular(data, ["u1", "u2", "u3", "u5"], k=2)
    # Users per item: i2 3, i1 2, i4 2, i3 1 -> order i2, i1, i4 (tie with i1: smaller id first), i3.
    assert recs == {"u1": ["i4", "i3"], "u2": ["i2", "i4"], "u3": ["i1", "i4"], "u5": ["i1", "i3"]}
    metrics = evaluate_recommendations(recs, split.held_out, k=2, catalogue_size=len(data.items))
    # Held-out ranks: u1 2, u2 1, u3 miss, u5 1.
    assert metrics == pytest.approx(
        {
            "hr@2": 3 / 4,
            "ndcg@2": (1 / np.log2(3) + 1 + 0 + 1) / 4,  # 0.657732
            "mrr@2": (1 / 2 + 1 + 0 + 1) / 4,  # 0.625
            "coverage@2": 4 / 4,  # i1..i4 all recommended to somebody
        }
    )


def test_item_knn_baseline() -> None:
    split = leave_last_out(EVENTS)
    data = InteractionMatrix.from_events(split.history)
    recs = recommend_item_knn(data, ["u1", "u2", "u3", "u5"], k=2)
    # Users per item: i1 {u1,u2}, i2 {u1,u3,u5}, i3 {u2}, i4 {u4,u5}. Cosines:
    # (i1,i2) 1/sqrt(6) = 0.408, (i1,i3) 1/sqrt(2) = 0.707, (i2,i4) 1/sqrt(6) = 0.408, all others 0.
    # u1 {i1,i2}: i3 0.707, i4 0.408. u2 {i1,i3}: i2 0.408, i4 0. u3 {i2}: i1 0.408 = i4 0.408 (tie), i3 0.
    # u5 {i2,i4}: i1 0.408, i3 0.
    assert recs == {"u1": ["i3", "i4"], "u2": ["i2", "i4"], "u3": ["i1", "i4"], "u5": ["i1", "i3"]}
    metrics = evaluate_recommendations(recs, split.held_out, k=1, catalogue_size=len(data.items))
    # Top 1: u1 i3 hit, u2 i2 hit, u3 i1 miss, u5 i1 hit; recommended {i3, i2, i1} of 4 items.
    assert metrics == pytest.approx({"hr@1": 0.75, "ndcg@1": 0.75, "mrr@1": 0.75, "coverage@1": 0.75})


def test_item_knn_equals_brute_force_cosine() -> None:
    rng = np.random.default_rng(0)
    events = [(f"u{rng.integers(30)}", f"i{rng.integers(40)}", float(t)) for t in range(400)]
    data = InteractionMatrix.from_events(events)
    dense = data.matrix.toarray()
    norms = np.sqrt(dense.sum(axis=0))
    cosine = (dense.T @ dense) / np.outer(norms, norms)
    recs = recommend_item_knn(data, data.users, k=5, batch_size=7)  # several batches
    for row, user in enumerate(data.users):
        scores = dense[row] @ cosine
        scores[dense[row] > 0] = -np.inf
        best = np.sort(scores)[::-1][:5]
        # Compare scores rather than ids: float rounding may order exact ties differently.
        np.testing.assert_allclose([scores[data.items.index(item)] for item in recs[user]], best, rtol=1e-9)
        assert not set(recs[user]) & {data.items[c] for c in np.flatnonzero(dense[row])}  # nothing seen


def test_input_errors() -> None:
    data = InteractionMatrix.from_events(EVENTS)
    with pytest.raises(ValueError, match=r"users without history.*\['nobody'\]"):
        recommend_popular(data, ["nobody"], k=3)
    with pytest.raises(ValueError, match=r"unknown baseline.*'item_knn', 'popularity'"):
        evaluate_baselines(EVENTS, baselines=["als"])


MOVIELENS = Path(__file__).resolve().parents[2] / "data" / "movielens" / "ratings.csv"


def test_baselines_on_movielens_slice() -> None:
    read = read_events(MOVIELENS, EventSchema(user_id="userId", item_id="movieId"))
    events = list(zip(read.user_ids.tolist(), read.item_ids.tolist(), read.timestamps.tolist(), strict=True))
    users = sorted({user for user, _, _ in events}, key=int)[:200]
    keep = set(users)
    sliced = [event for event in events if event[0] in keep]
    results = evaluate_baselines(sliced, k=10)
    for name in ("popularity", "item_knn"):
        assert set(results[name]) == {"hr@10", "ndcg@10", "mrr@10", "coverage@10"}
    # measured on users 1..200: popularity hr@10 0.055, item_knn hr@10 0.065
    assert results["popularity"]["hr@10"] > 0.02
    assert results["item_knn"]["hr@10"] > 0.03
    assert results["item_knn"]["coverage@10"] > results["popularity"]["coverage@10"]  # kNN personalises more
    assert all(0.0 <= value <= 1.0 for metrics in results.values() for value in metrics.values())
