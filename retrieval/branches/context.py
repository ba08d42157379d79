"""Branches that need no query text: geography (a BallTree on haversine) and popularity for cold start."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from indexer.geo import EARTH_RADIUS_KM, haversine_km
from retrieval.branches.behaviour import LivePopularity, top_rows
from retrieval.candidates import BranchResult, SearchQuery
from retrieval.collection import Collection
from retrieval.names import names_of, normalize_name

# An exact name leads a partial match up to this many times farther away (in 1 + km): "Springfield" asked
# 10 km from Springfield MA answers Springfield MA before West Springfield, 3 km away.
EXACT_NAME_REACH = 10.0
# Exact names are looked for among this many of the nearest good matches (each costs a docstore read).
EXACT_NAME_CHECKED = 100


class GeoSource:
    """`geo`: items near the request's location.

    With query text: the items that match as many of the text's terms as the best match does (a city with
    fifty alternate names matches "Springfield" as fully as a village with one; "York" is not an answer to
    "New York"), nearest first, where an item whose name is exactly the text counts as `EXACT_NAME_REACH`
    times nearer. Without text: the nearest items. Either way within `radius_km` when the request gives one.
    """

    name = "geo"
    inline = False  # reads the docstore

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
            rows = self._text_matches(query, limit)
            distance = self.distances_km(rows, lat, lon)
        else:
            rows, distance = self._nearest(lat, lon, limit, query.allowed)
        located = ~np.isnan(distance)
        if query.radius_km is not None:
            located &= distance <= query.radius_km
        rows, distance = rows[located], distance[located]
        order = np.lexsort((rows, distance))
        rows, distance = rows[order], distance[order]
        if query.text.strip():
            distance = self._exact_names_nearer(rows, distance, query.text)
            order = np.lexsort((rows, distance))
            rows, distance = rows[order], distance[order]
        # Closer is better: 1 at the location, 0.5 at 100 km.
        return BranchResult(
            self.name, rows[:limit].astype(np.int64), (1 / (1 + distance[:limit] / 100)).astype(np.float32)
        )

    def _text_matches(self, query: SearchQuery, limit: int) -> np.ndarray:
        """The BM25 matches that contain as many of the text's distinct terms as the best one does."""
        inverted = self.collection.inverted
        terms = self.collection.query_terms(query.text)
        rows, _ = inverted.search(terms, max(limit, 1000), allowed=query.allowed)
        if not len(rows):
            return rows
        coverage = inverted.coverage(terms, rows)
        return rows[coverage >= coverage.max() - 1e-9]

    def _exact_names_nearer(self, rows: np.ndarray, distance: np.ndarray, text: str) -> np.ndarray:
        """`distance` with the items named exactly `text` (among the nearest checked) moved
        `EXACT_NAME_REACH` times nearer, measured in 1 + km."""
        wanted = normalize_name(text)
        checked = rows[:EXACT_NAME_CHECKED]
        records = self.collection.docstore.get_many(self.collection.external_ids_of(checked))
        exact = np.array([record is not None and wanted in names_of(record) for record in records], bool)
        if not exact.any():
            return distance
        adjusted = distance.copy()
        head = adjusted[: len(checked)]
        head[exact] = np.maximum(0.0, (1 + head[exact]) / EXACT_NAME_REACH - 1)
        return adjusted

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
    """`popular`: the most popular items (time-decayed behaviour popularity, or the popularity column), as
    of the last real-time write."""

    name = "popular"
    inline = True  # one pass over a column in memory

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.scores = LivePopularity(collection)

    def enabled(self, query: SearchQuery) -> bool:
        return self.collection.popularity is not None and query.wants_text_free(self.name)

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        scores = self.scores()
        assert scores is not None  # the gate guarantees it
        rows, values = top_rows(scores, limit, query.allowed)
        return BranchResult(self.name, rows, values)
