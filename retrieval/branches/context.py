"""Branches that need no query text: geography (a BallTree on haversine) and popularity for cold start."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from indexer.geo import EARTH_RADIUS_KM, haversine_km
from retrieval.branches.behaviour import top_rows
from retrieval.candidates import BranchResult, SearchQuery
from retrieval.collection import Collection

GOOD_MATCH = 0.5  # text matches scoring at least half the best match count as answers to the text


class GeoSource:
    """`geo`: items near the request's location.

    With query text, the good BM25 matches of the text (at least half the best score) ordered by distance,
    the nearest "Springfield" first; without text, the nearest items. Either way within `radius_km` when
    the request gives one.
    """

    name = "geo"

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.has_coordinates = {"lat", "lon"} <= set(collection.numeric_names)

    def enabled(self, query: SearchQuery) -> bool:
        return self.has_coordinates and query.location is not None

    @cached_property
    def _tree(self):
        from sklearn.neighbors import BallTree

        coordinates = np.column_stack([self.collection.numeric("lat"), self.collection.numeric("lon")])
        self._located = np.flatnonzero(~np.isnan(coordinates).any(axis=1))
        return BallTree(np.radians(coordinates[self._located]), metric="haversine")

    def distances_km(self, rows: np.ndarray, lat: float, lon: float) -> np.ndarray:
        return haversine_km(
            lat, lon, self.collection.numeric("lat")[rows], self.collection.numeric("lon")[rows]
        )

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        assert query.location is not None  # the gate guarantees it
        lat, lon = query.location
        if query.text.strip():
            terms = self.collection.query_terms(query.text)
            rows, scores = self.collection.inverted.search(terms, max(limit, 1000), allowed=query.allowed)
            good = scores >= GOOD_MATCH * scores[0] if len(scores) else scores.astype(bool)
            rows = rows[good]  # a near item matching one word of a long query is no answer to it
            distance = self.distances_km(rows, lat, lon)
        else:
            rows, distance = self._nearest(lat, lon, limit, query.allowed)
        located = ~np.isnan(distance)
        if query.radius_km is not None:
            located &= distance <= query.radius_km
        rows, distance = rows[located], distance[located]
        order = np.lexsort((rows, distance))[:limit]
        # Closer is better: 1 at the location, 0.5 at 100 km.
        return BranchResult(
            self.name, rows[order].astype(np.int64), (1 / (1 + distance[order] / 100)).astype(np.float32)
        )

    def _nearest(
        self, lat: float, lon: float, limit: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        tree = self._tree
        want = min(len(self._located), limit if allowed is None else max(limit * 4, 256))
        while True:
            radians, positions = tree.query(np.radians([[lat, lon]]), k=want)
            rows = self._located[positions[0]]
            keep = np.ones(len(rows), dtype=bool) if allowed is None else allowed[rows]
            if keep.sum() >= limit or want >= len(self._located):
                return rows[keep][:limit], (radians[0] * EARTH_RADIUS_KM)[keep][:limit]
            want = min(len(self._located), want * 4)


class PopularSource:
    """`popular`: the most popular items (time-decayed behaviour popularity, or the popularity column)."""

    name = "popular"

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        popularity = collection.popularity
        self.scores = None if popularity is None else np.nan_to_num(np.asarray(popularity, dtype=np.float64))

    def enabled(self, query: SearchQuery) -> bool:
        return self.scores is not None and query.wants_text_free(self.name)

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        assert self.scores is not None  # the gate guarantees it
        rows, scores = top_rows(self.scores, limit, query.allowed)
        return BranchResult(self.name, rows, scores)
