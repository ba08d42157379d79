"""Branches that read the user's behaviour: item-to-item (item2vec), co-visitation and preferred keywords.

All start from the request's recent items (`indexer.histories.recent_items`: the ones it names, else the
user's history from the build), the newest weighted most (a weight halves every `half_life_items` items
back).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from indexer.histories import recent_items
from retrieval.candidates import BranchResult, SearchQuery
from retrieval.collection import Collection

RECENT_ITEMS = 50
HALF_LIFE_ITEMS = 10.0


def recency_weights(n: int, half_life: float = HALF_LIFE_ITEMS) -> np.ndarray:
    """Weights for n items oldest first: the newest gets 1, one `half_life` back gets 0.5."""
    return 0.5 ** (np.arange(n - 1, -1, -1, dtype=np.float64) / half_life)


def top_rows(scores: np.ndarray, limit: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The `limit` best rows with a positive score, allowed ones only, best first (ties: lower row)."""
    if allowed is not None:
        scores = np.where(allowed, scores, 0.0)
    candidates = np.flatnonzero(scores > 0)
    if candidates.size > limit:
        candidates = candidates[np.argpartition(-scores[candidates], limit - 1)[:limit]]
    order = np.lexsort((candidates, -scores[candidates]))
    chosen = candidates[order]
    return chosen.astype(np.int64), scores[chosen].astype(np.float32)


class LivePopularity:
    """A collection's popularity as float64 without NaN, passed through `transform`; read again once
    real-time writes have added events since the last read (`Collection.added_events`), so what a branch
    derives from it follows the writes instead of staying as it was at load."""

    def __init__(
        self, collection: Collection, transform: Callable[[np.ndarray], np.ndarray] = lambda values: values
    ) -> None:
        self.collection = collection
        self.transform = transform
        self._read: tuple[int, np.ndarray | None] = (-1, None)  # (added events when read, values): one
        # assignment, so a request never pairs one read's count with another's values
        self()  # read at load, before any worker is forked

    def __call__(self) -> np.ndarray | None:
        added = self.collection.added_events  # before reading the values: a write in between reads again
        read_at, values = self._read
        if read_at != added:
            popularity = self.collection.popularity
            values = None
            if popularity is not None:
                values = self.transform(np.nan_to_num(np.asarray(popularity, dtype=np.float64)))
            self._read = (added, values)
        return values


class ItemToItemSource:
    """`item2item`: items whose item2vec vectors are close to the recent items, recency-weighted."""

    name = "item2item"
    inline = False  # a matrix product over every item vector

    def __init__(self, collection: Collection, recent: int = RECENT_ITEMS) -> None:
        self.collection = collection
        self.recent = recent

    def enabled(self, query: SearchQuery) -> bool:
        behaviour = self.collection.behaviour
        return (
            query.wants_text_free(self.name)
            and behaviour is not None
            and behaviour.item_vectors is not None
            and len(recent_items(self.collection.behaviour, query.user_id, query.recent_rows)) > 0
        )

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        behaviour = self.collection.behaviour
        assert behaviour is not None and behaviour.item_vectors is not None  # the gate guarantees it
        rows = recent_items(self.collection.behaviour, query.user_id, query.recent_rows)[-self.recent :]
        vectors = np.asarray(behaviour.item_vectors)
        # Sum of recency-weighted cosines to each recent item = dot product with their weighted sum.
        profile = recency_weights(len(rows)) @ vectors[rows]
        scores = vectors @ profile
        if behaviour.item_known is not None:
            scores = np.where(behaviour.item_known, scores, 0.0)
        scores[rows] = 0.0  # never recommend the items the request starts from
        found, values = top_rows(scores, limit, query.allowed)
        return BranchResult(self.name, found, values)


class CovisitSource:
    """`covisit`: item-based collaborative filtering. Items co-consumed (by the same users) with the recent
    items, by cosine over the user-item matrix, each recent item weighted by recency. The matrix holds the
    built events and the pairs real-time writes added since, so a streamed event counts as a rebuild
    would count it.

    The weight halves every `half_life_items` items back (2 by default: on MovieLens, validating on each
    user's second-to-last event with the last one removed, half-lives 2/3/5/7/∞ gave NDCG@10
    0.052/0.046/0.041/0.036/0.018 — recency is most of the signal).
    """

    name = "covisit"
    inline = False  # sparse products over the user-item matrix

    def __init__(
        self, collection: Collection, half_life_items: float = 2.0, recent: int = RECENT_ITEMS
    ) -> None:
        self.collection = collection
        self.half_life_items = half_life_items
        self.recent = recent
        behaviour = collection.behaviour
        self.matrix: sp.csr_matrix | None = None
        if behaviour is not None and len(behaviour.rows):
            indptr = np.asarray(behaviour.indptr, dtype=np.int64)
            rows = np.asarray(behaviour.rows, dtype=np.int64)
            users = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
            matrix = sp.csr_matrix(
                (np.ones(len(rows)), (users, rows)), shape=(len(indptr) - 1, len(collection))
            )
            matrix.data[:] = 1.0  # repeated events count once
            self.matrix = matrix
            self.by_item = matrix.tocsc()
            self.users_per_item = np.asarray(matrix.sum(axis=0)).ravel()
            self.norms = np.sqrt(self.users_per_item) + 1e-12
        # (added events when read, the pairs they add as a user-item matrix and by item, norms with them)
        self._added: tuple[int, tuple[sp.csr_matrix, sp.csc_matrix, np.ndarray] | None] = (0, None)

    def enabled(self, query: SearchQuery) -> bool:
        return (
            query.wants_text_free(self.name)
            and self.matrix is not None
            and len(recent_items(self.collection.behaviour, query.user_id, query.recent_rows)) > 0
        )

    def added(self) -> tuple[sp.csr_matrix, sp.csc_matrix, np.ndarray] | None:
        """The user-item pairs real-time writes added (`Behaviour.added_pairs`) as a matrix D with a row per
        user, built or not, and by item, with the item norms of X + D; None while there are none. Read
        again once more events were added."""
        behaviour = self.collection.behaviour
        assert behaviour is not None and self.matrix is not None  # the gate guarantees it
        count = behaviour.added_events  # before the pairs: a write in between reads them again
        read_at, added = self._added
        if read_at != count:
            users, rows = behaviour.added_pairs()
            added = None
            if len(users):
                shape = (max(self.matrix.shape[0], int(users.max()) + 1), len(self.collection))
                delta = sp.csr_matrix((np.ones(len(users)), (users, rows)), shape=shape)
                counts = self.users_per_item + np.asarray(delta.sum(axis=0)).ravel()
                added = (delta, delta.tocsc(), np.sqrt(counts) + 1e-12)
            self._added = (count, added)
        return added

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        assert self.matrix is not None  # the gate guarantees it
        rows = recent_items(self.collection.behaviour, query.user_id, query.recent_rows)[-self.recent :]
        weights = recency_weights(len(rows), self.half_life_items)
        # Sum over recent items i of w_i * cos(i, j) = X^T (X[:, R] (w / |R|)) / |j|, two sparse products.
        # With pairs added since the build, X + D in place of X: D's few rows and columns cost little.
        added = self.added()
        if added is None:
            users = self.by_item[:, rows] @ (weights / self.norms[rows])
            scores = np.asarray(self.matrix.T @ users).ravel() / self.norms
        else:
            delta, delta_by_item, norms = added
            built = self.matrix.shape[0]
            scaled = weights / norms[rows]
            users = delta_by_item[:, rows] @ scaled
            users[:built] += self.by_item[:, rows] @ scaled
            scores = (np.asarray(self.matrix.T @ users[:built]).ravel() + delta.T @ users) / norms
        scores[rows] = 0.0
        found, values = top_rows(scores, limit, query.allowed)
        return BranchResult(self.name, found, values)


class UserPreferenceSource:
    """`user_pref`: the keyword values (category, tags) the recent items share most, then the most popular
    items that hold them. An item's score is the summed preference of its values, popularity breaking ties."""

    name = "user_pref"
    inline = False  # keyword postings of the preferred values

    def __init__(self, collection: Collection, top_values: int = 5) -> None:
        self.collection = collection
        self.top_values = top_values
        self.fields = [f for f in ("category", "tags") if f in collection.keyword_fields]
        self._values_of_rows = {name: self._transpose(name) for name in self.fields}
        # Popularity scaled to [0, 1e-3]: added to the items that hold a preferred value, it only breaks ties.
        self._tie_breaks = LivePopularity(collection, lambda pop: 1e-3 * pop / (pop.max(initial=0.0) or 1.0))

    def _transpose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Row-major view of a keyword field: (indptr over rows, value codes), built once at load."""
        field = self.collection.keywords.field(name)
        postings = [np.asarray(field.rows(value), dtype=np.int64) for value in field.values]
        rows = np.concatenate(postings) if postings else np.zeros(0, dtype=np.int64)
        codes = np.repeat(np.arange(len(postings)), [len(p) for p in postings])
        order = np.argsort(rows, kind="stable")
        indptr = np.searchsorted(rows[order], np.arange(len(self.collection) + 1))
        return indptr, codes[order]

    def enabled(self, query: SearchQuery) -> bool:
        return (
            query.wants_text_free(self.name)
            and bool(self.fields)
            and len(recent_items(self.collection.behaviour, query.user_id, query.recent_rows)) > 0
        )

    def preferences(self, rows: np.ndarray) -> list[tuple[str, str, float]]:
        """(field, value, weight) of the strongest preferences, weights summing to 1."""
        weights = recency_weights(len(rows))
        totals: dict[tuple[str, str], float] = {}
        for name in self.fields:
            indptr, codes = self._values_of_rows[name]
            values = self.collection.keywords.field(name).values
            for row, weight in zip(rows.tolist(), weights.tolist(), strict=True):
                for code in codes[indptr[row] : indptr[row + 1]].tolist():
                    key = (name, values[code])
                    totals[key] = totals.get(key, 0.0) + weight
        best = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[: self.top_values]
        norm = sum(weight for _, weight in best) or 1.0
        return [(name, value, weight / norm) for (name, value), weight in best]

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        rows = recent_items(self.collection.behaviour, query.user_id, query.recent_rows)
        scores = np.zeros(len(self.collection), dtype=np.float64)
        for name, value, weight in self.preferences(rows):
            scores[self.collection.keywords.field(name).rows(value)] += weight
        tie_breaks = self._tie_breaks()
        if tie_breaks is not None:
            scores += np.where(scores > 0, tie_breaks, 0.0)
        scores[rows] = 0.0
        found, values = top_rows(scores, limit, query.allowed)
        return BranchResult(self.name, found, values)
