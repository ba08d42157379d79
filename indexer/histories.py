"""Users' histories: the one order of a user's events, and what a request's recent items are.

A leaf module (numpy only), so the ranker's features read recent items without loading what writes the
behaviour artifacts (gensim).

`time_order` is the order of a user's events wherever one is needed: the build's histories and item2vec
sequences (`indexer.behaviour`), and the leave-last-out split of the evaluation and of recommendation
training (`jobs.evaluation.recommend`). Oldest first; events at the same time go by item id (string order),
so the order never depends on where the events stood in a log, and a history rebuilt from a split keeps the
split's order.

`recent_items` is what the behaviour branches (`retrieval.branches.behaviour`) and the ranker's features
(`ranker.features.io_ops`) take as a request's recent items.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

TIME_ORDER = "user id, then timestamp, then item id"  # what `time_order` sorts by; in build fingerprints


def time_order(user_ids: np.ndarray, item_ids: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """The permutation that groups events by user (ids in string order) and puts each user's oldest first,
    events of one user at the same time by item id (string order). Stable: only an event repeated at the
    same time keeps its place in the input."""
    return np.lexsort((item_ids, timestamps, user_ids))


class Histories(Protocol):
    """Users' built histories (`indexer.behaviour.Behaviour`)."""

    def history(self, user_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item rows, timestamps, weights) of the user's events in `time_order`; empty for a stranger."""
        ...


def recent_items(histories: Histories | None, user_id: str | None, named: Sequence[int] = ()) -> np.ndarray:
    """Rows of a request's recent items, oldest first: the rows it `named` (its own list, in its order), else
    the user's built history, else none (no user, or a collection built without behaviour)."""
    if named:
        return np.asarray(named, dtype=np.int64)
    if histories is None or user_id is None:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(histories.history(user_id)[0], dtype=np.int64)
