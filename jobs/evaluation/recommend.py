"""Offline evaluation of recommendations on behaviour logs: leave-last-out split, metrics and baselines.

Protocol. Events are `(user_id, item_id, timestamp)`. Each user's events are ordered as the build orders a
history (`indexer.histories.time_order`: by timestamp, then item id), so the split never depends on file order
and a history rebuilt from the split is the split's own order. For every user with at least 2 events the
last one is held out and the rest is history; a user with a single event is not evaluated, but that event
stays in the history that baselines learn from. Recommenders rank the whole catalogue (every item in the
history) minus the items the user has already seen, and each user has exactly one relevant item, so

- HR@k = share of users whose held-out item is in their top k,
- NDCG@k = mean of 1 / log2(rank + 1) when the item is at `rank` <= k, else 0 (the ideal DCG is 1),
- MRR@k = mean of 1 / rank when the item is in the top k, else 0,
- coverage@k = distinct items recommended in anybody's top k / catalogue size.

Baselines. `recommend_popular` ranks items by how many users interacted with them in the history;
`recommend_item_knn` scores a candidate by the sum of its cosine similarities (over the binary user-item
matrix) to the user's history items. Both exclude seen items; ties go to the smaller item id.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from indexer.histories import time_order

Event = tuple[str, str, float]


@dataclass(frozen=True, slots=True)
class LeaveLastOutSplit:
    """History events (everything but each evaluated user's last events) and all the user's held-out items,
    oldest first (`targets`; just the last item when one is held out)."""

    history: list[Event]
    targets: dict[str, list[str]]

    @property
    def held_out(self) -> dict[str, str]:
        """The held-out last item per user."""
        return {user: items[-1] for user, items in self.targets.items()}


def leave_last_out(events: Iterable[Event], n: int = 1) -> LeaveLastOutSplit:
    """Hold out each user's last `n` events (in `time_order`), always keeping one in the history: users with
    < 2 events keep all. The history lists users in id order, each user's events oldest first."""
    if n < 1:
        raise ValueError(f"hold out at least one event per user, got {n}")
    events = list(events)
    order = time_order(
        np.array([event[0] for event in events], dtype=str),
        np.array([event[1] for event in events], dtype=str),
        np.array([event[2] for event in events], dtype=np.float64),
    )
    history: list[Event] = []
    targets: dict[str, list[str]] = {}
    for user, group in itertools.groupby((events[i] for i in order.tolist()), key=lambda event: event[0]):
        ordered = list(group)
        if len(ordered) >= 2:
            kept = max(1, len(ordered) - n)
            targets[user] = [item for _, item, _ in ordered[kept:]]
            ordered = ordered[:kept]
        history.extend(ordered)
    return LeaveLastOutSplit(history=history, targets=targets)


@dataclass(frozen=True, slots=True)
class StreamingSplit:
    """Leave-last-out with each user's second-to-last event set aside to be streamed: `base` is what the
    first build sees, `base + streamed` what a rebuild sees, `held_out` the target (each user's last item)."""

    base: list[Event]
    streamed: list[Event]
    held_out: dict[str, str]


def streaming_split(events: Iterable[Event]) -> StreamingSplit:
    """Each user's events in `time_order`: the last is held out, the second-to-last streamed, the rest is the
    base. As in `leave_last_out`, one event always stays in the base (a user with two events streams none)
    and a user with one event is not evaluated; so `base` is ``leave_last_out(events, 2).history`` and
    `base + streamed` holds the events of ``leave_last_out(events, 1).history``. Events come user by user
    (ids in string order), each user's oldest first."""
    events = list(events)
    order = time_order(
        np.array([event[0] for event in events], dtype=str),
        np.array([event[1] for event in events], dtype=str),
        np.array([event[2] for event in events], dtype=np.float64),
    )
    base: list[Event] = []
    streamed: list[Event] = []
    held_out: dict[str, str] = {}
    for user, group in itertools.groupby((events[i] for i in order.tolist()), key=lambda event: event[0]):
        ordered = list(group)
        if len(ordered) >= 2:
            held_out[user] = ordered.pop()[1]
        if len(ordered) >= 2:
            streamed.append(ordered.pop())
        base.extend(ordered)
    return StreamingSplit(base=base, streamed=streamed, held_out=held_out)


@dataclass(frozen=True, slots=True)
class InteractionMatrix:
    """Binary user x item matrix (CSR) with the external ids of its rows and columns (sorted)."""

    users: list[str]
    items: list[str]
    matrix: sp.csr_matrix

    @classmethod
    def from_events(cls, events: Sequence[Event]) -> InteractionMatrix:
        users = sorted({event[0] for event in events})
        items = sorted({event[1] for event in events})
        user_row = {user: row for row, user in enumerate(users)}
        item_col = {item: col for col, item in enumerate(items)}
        rows = np.fromiter((user_row[e[0]] for e in events), dtype=np.int64, count=len(events))
        cols = np.fromiter((item_col[e[1]] for e in events), dtype=np.int64, count=len(events))
        matrix = sp.csr_matrix((np.ones(len(events)), (rows, cols)), shape=(len(users), len(items)))
        matrix.data[:] = 1.0  # repeated (user, item) events count once
        return cls(users=users, items=items, matrix=matrix)


def _top_k_unseen(scores: np.ndarray, seen: sp.csr_matrix, k: int) -> list[list[int]]:
    """Column indices of the k best unseen items per row; stable sort, so ties go to the lower index."""
    scores = scores.copy()
    scores[seen.nonzero()] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[int(col) for col in row if np.isfinite(scores[i, col])] for i, row in enumerate(order)]


def _recommend(
    data: InteractionMatrix,
    users: Sequence[str],
    k: int,
    score_rows: Callable[[sp.csr_matrix], np.ndarray],
    batch_size: int,
) -> dict[str, list[str]]:
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    row_of = {user: row for row, user in enumerate(data.users)}
    unknown = [user for user in users if user not in row_of]
    if unknown:
        raise ValueError(f"users without history cannot be scored: {unknown[:5]}")
    out: dict[str, list[str]] = {}
    for start in range(0, len(users), batch_size):
        batch = list(users[start : start + batch_size])
        seen = data.matrix[[row_of[user] for user in batch]]
        for user, cols in zip(batch, _top_k_unseen(score_rows(seen), seen, k), strict=True):
            out[user] = [data.items[col] for col in cols]
    return out


def recommend_popular(
    data: InteractionMatrix, users: Sequence[str], k: int, batch_size: int = 1024
) -> dict[str, list[str]]:
    """Most popular unseen items (popularity = number of users with the item in their history)."""
    popularity = np.asarray(data.matrix.sum(axis=0), dtype=np.float64).ravel()
    return _recommend(data, users, k, lambda seen: np.tile(popularity, (seen.shape[0], 1)), batch_size)


def recommend_item_knn(
    data: InteractionMatrix, users: Sequence[str], k: int, batch_size: int = 256
) -> dict[str, list[str]]:
    """Item-based kNN: score(u, i) = sum over history items j of cosine(j, i), unseen items only."""
    counts = np.asarray(data.matrix.sum(axis=0), dtype=np.float64).ravel()
    inv_sqrt = sp.diags(np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1.0)), 0.0))
    normalised = (data.matrix @ inv_sqrt).tocsr()  # column j scaled by 1 / sqrt(users of j)

    def score_rows(seen: sp.csr_matrix) -> np.ndarray:
        # x_u S with S = N^T N, computed as ((x_u D^-1/2) X^T) X D^-1/2 without building the item x item S.
        return np.asarray(((seen @ inv_sqrt) @ data.matrix.T @ normalised).todense())

    return _recommend(data, users, k, score_rows, batch_size)


def evaluate_recommendations(
    recommendations: Mapping[str, Sequence[str]], held_out: Mapping[str, str], k: int, catalogue_size: int
) -> dict[str, float]:
    """HR@k, NDCG@k, MRR@k and coverage@k of top-k lists against one held-out item per user."""
    if not held_out:
        raise ValueError("no held-out users to evaluate")
    if catalogue_size < 1:
        raise ValueError(f"catalogue_size must be positive, got {catalogue_size!r}")
    ranks = np.zeros(len(held_out))  # 0 = not in the top k
    recommended: set[str] = set()
    for index, (user, item) in enumerate(held_out.items()):
        top = list(recommendations.get(user, []))[:k]
        recommended.update(top)
        if item in top:
            ranks[index] = top.index(item) + 1
    hit = ranks > 0
    return {
        f"hr@{k}": float(hit.mean()),
        f"ndcg@{k}": float(np.where(hit, 1.0 / np.log2(np.maximum(ranks, 1) + 1), 0.0).mean()),
        f"mrr@{k}": float(np.where(hit, 1.0 / np.maximum(ranks, 1), 0.0).mean()),
        f"coverage@{k}": len(recommended) / catalogue_size,
    }


BASELINES: dict[str, Callable[..., dict[str, list[str]]]] = {
    "popularity": recommend_popular,
    "item_knn": recommend_item_knn,
}


def evaluate_baselines(
    events: Iterable[Event], k: int = 10, baselines: Sequence[str] = tuple(BASELINES)
) -> dict[str, dict[str, float]]:
    """Leave-last-out split, then each named baseline's metrics at k over all held-out users."""
    unknown = [name for name in baselines if name not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; choose from {sorted(BASELINES)}")
    split = leave_last_out(events)
    data = InteractionMatrix.from_events(split.history)
    held_out = split.held_out
    users = sorted(held_out)
    return {
        name: evaluate_recommendations(BASELINES[name](data, users, k), held_out, k, len(data.items))
        for name in baselines
    }
