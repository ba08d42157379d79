"""A served collection: the loaded artifact, its pipeline, and hits resolved to external ids and fields."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer.encoders import AUTO, TextEncoder
from indexer.geo import haversine_km
from ranker.scoring import Scorer
from retrieval.branches import all_sources
from retrieval.candidates import SearchQuery
from retrieval.collection import Collection, ShardOpener
from retrieval.errors import RequestError, UnknownItemError
from retrieval.live_writes import LiveWrites
from retrieval.pipeline import PipelineConfig, SearchOutcome, SearchPipeline
from retrieval.ranker_status import RankerStatus, load_scorer
from retrieval.segments import unavailable_segments

SIMILAR_SCORER = "dense"  # what orders /similar: cosine in the transformer space


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float
    title: str
    branches: dict[str, int]
    features: dict[str, float] | None = None  # with explain and a learned ranker


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    hits: list[Hit]
    degraded: list[str]
    version: str
    scorer: str
    took_ms: float
    branch_ms: dict[str, float] = field(default_factory=dict)
    branch_counts: dict[str, int] = field(default_factory=dict)
    explain: dict[str, list[dict]] | None = None
    scorer_version: str = ""
    scorer_reason: str | None = None  # why a configured ranker left this answer in the fusion order


FilterValue = str | list[str]


class CollectionService:
    """Answers searches for one collection."""

    def __init__(
        self, collection: Collection, pipeline: SearchPipeline, ranker: RankerStatus | None = None
    ) -> None:
        # (collection, pipeline), replaced as one when written items extend the collection (`install`): a
        # request reads it once and finishes on what it read
        self._state = (collection, pipeline)
        self._pool_owner = pipeline  # the first pipeline's pool serves every pipeline `install` makes
        self.ranker = ranker or RankerStatus(pipeline.scorer.name, pipeline.scorer.version)
        self.live = LiveWrites(collection, None, 0)  # `open` gives it the root's write log

    @property
    def collection(self) -> Collection:
        return self._state[0]

    @property
    def pipeline(self) -> SearchPipeline:
        return self._state[1]

    def install(self, collection: Collection) -> None:
        """Serve `collection` (this version with the items written since it was built, `retrieval.delta`):
        its branches, and the ranker's features bound to it, from the next request on."""
        old = self.pipeline
        scorer = old.scorer
        rebind = getattr(scorer, "for_collection", None)
        if rebind is not None:
            scorer = rebind(collection)
        pipeline = SearchPipeline(
            all_sources(collection),
            scorer=scorer,
            config=old.config,
            pool_of=self._pool_owner,
            batched_reads=collection.batched_reads,
        )
        self._state = (collection, pipeline)

    @classmethod
    def open(
        cls,
        root: Path,
        *,
        name: str | None = None,
        scorer: Scorer | None = None,
        config: PipelineConfig | None = None,
        encoder: TextEncoder | None = None,
        ranker: Path | None = None,
        feature_log: Path | None = None,
        query_encoder: str = AUTO,
        shard_opener: ShardOpener | None = None,
    ) -> CollectionService:
        """Load `root`'s current version, reusing `encoder` when it is of the kind that embeds its queries.

        `ranker`: a ranker root or version to score the merged candidates with. One this collection cannot
        serve (unreadable, or features the collection cannot compute) is refused here, with the reason in
        `service.ranker.error`, and the fusion order serves instead. `feature_log`: a JSON-lines file the
        ranker appends each scored request's features to. `query_encoder`: which kind embeds the queries
        (`indexer.encoders.QUERY_ENCODERS`; ``auto``: ONNX int8 for a MiniLM collection).
        """
        collection = Collection.load(
            root, name=name, encoder=encoder, query_encoder=query_encoder, shard_opener=shard_opener
        )
        try:
            collection.encoder.warm_up()  # load the model now, not in the first request
            sources = all_sources(collection)
            status = None
            if ranker is not None and scorer is None:
                branches = [source.name for source in sources]
                scorer, status = load_scorer(ranker, collection, collection.name, branches, feature_log)
            pipeline = SearchPipeline(
                sources, scorer=scorer, config=config, batched_reads=collection.batched_reads
            )
            service = cls(collection, pipeline, status)
            service.live = LiveWrites.open(collection, root, on_change=service.install)
            service.warm_up()
        except BaseException:
            collection.close()  # a version that failed to open keeps no RocksDB handle open
            raise
        return service

    def warm_up(self) -> None:
        """Run every branch's recall once on the first item's title and build what the first request would
        build (the compiled BM25 kernels, the id map), so that request does not wait for them and workers
        forked after loading (`serve --workers`) share them. The scorer is left out: it would log the search
        and count it in `/readyz`."""
        collection = self.collection
        first = collection.docstore.get(collection.ids[0]) if len(collection) else None
        collection.row_of  # noqa: B018 (a cached property, built here)
        self.pipeline.recall(self.query((first or {}).get("title") or "warm up", 10), 10)

    @property
    def version(self) -> str:
        return self.collection.version

    def row(self, item_id: str) -> int:
        """The internal row of `item_id`; UnknownItemError when the collection does not hold it."""
        row = self.collection.row_of.get(item_id)
        if row is None or self.collection.is_deleted(row):
            raise UnknownItemError(self.collection.name, item_id)
        return row

    def query(
        self,
        text: str,
        k: int,
        *,
        filters: Mapping[str, FilterValue] | None = None,
        location: tuple[float, float] | None = None,
        radius_km: float | None = None,
        user_id: str | None = None,
        branches: list[str] | None = None,
    ) -> SearchQuery:
        """Validate a request against this collection and turn it into what the branches see."""
        known = {source.name for source in self.pipeline.sources}
        if branches is not None and (unknown := sorted(set(branches) - known)):
            raise RequestError("branches", f"unknown branch {unknown[0]!r}; choose from {sorted(known)}")
        if radius_km is not None and location is None:
            raise RequestError("radius_km", "needs a location to measure from")
        return SearchQuery(
            text=text,
            k=k,
            user_id=user_id,
            location=location,
            radius_km=radius_km,
            allowed=self.filter_mask(filters or {}, location, radius_km),
            branches=frozenset(branches) if branches is not None else None,
        )

    def filter_mask(
        self,
        filters: Mapping[str, FilterValue],
        location: tuple[float, float] | None,
        radius_km: float | None,
    ) -> np.ndarray | None:
        """Rows that pass every keyword filter and the radius; None when the request filters nothing."""
        collection = self.collection
        mask: np.ndarray | None = None
        for name, values in filters.items():
            if name not in collection.keyword_fields:
                fields = collection.keyword_fields or "none"
                raise RequestError(f"filters.{name}", f"not a keyword field; this collection has {fields}")
            part = collection.keyword_mask(name, values)
            mask = part if mask is None else mask & part
        if radius_km is not None and location is not None:
            if not {"lat", "lon"} <= set(collection.numeric_names):
                raise RequestError("radius_km", "this collection has no coordinates")
            lats, lons = collection.numeric("lat"), collection.numeric("lon")
            part = haversine_km(location[0], location[1], lats, lons) <= radius_km
            mask = part if mask is None else mask & part
        alive = collection.alive
        if alive is not None:  # items deleted since the build
            mask = alive.copy() if mask is None else mask & alive
        return mask

    def recommendation(
        self,
        k: int,
        *,
        user_id: str | None = None,
        items: list[str] | None = None,
        location: tuple[float, float] | None = None,
        radius_km: float | None = None,
        filters: Mapping[str, FilterValue] | None = None,
        exclude_seen: bool = True,
    ) -> SearchQuery:
        """A query without text, for behaviour, location and popularity recall. An id in `items` the
        collection does not hold is a `RequestError` naming `items` (a bad request value, not a missing
        resource)."""
        collection = self.collection
        n_rows = len(collection)
        row_of = collection.row_of
        unknown = [i for i in items or [] if i not in row_of or collection.is_deleted(row_of[i])]
        if unknown:
            raise RequestError("items", f"unknown item id(s) {unknown[:5]} in collection {collection.name!r}")
        recent = [self.row(item_id) for item_id in items or []]
        query = self.query("", k, filters=filters, location=location, radius_km=radius_km, user_id=user_id)
        allowed = query.allowed
        if exclude_seen:
            seen = list(recent)
            if user_id is not None and collection.behaviour is not None:
                history = collection.behaviour.history(user_id)[0].tolist()
                # an item written since the build has its new row too: leave that out as well
                seen += [collection.row_of.get(collection.ids[row], row) for row in history if row < n_rows]
            if seen:
                allowed = np.ones(n_rows, dtype=bool) if allowed is None else allowed.copy()
                allowed[[row for row in seen if row < len(allowed)]] = False
        return dataclasses.replace(query, allowed=allowed, recent_rows=tuple(recent))

    def run(self, text: str | SearchQuery, k: int = 10) -> SearchOutcome:
        """The pipeline's ranked candidates, with internal rows (for evaluation and explain)."""
        query = text if isinstance(text, SearchQuery) else SearchQuery(text=text, k=k)
        collection, pipeline = self._state
        return pipeline.search(_fitted(query, len(collection)))

    def search(self, query: SearchQuery | str, k: int = 10, *, explain: bool = False) -> SearchAnswer:
        query = query if isinstance(query, SearchQuery) else SearchQuery(text=query, k=k)
        collection, pipeline = self._state
        with ExitStack() as reads:  # the page's records come from the ranker's batched reads, if any
            outcome = pipeline.search(_fitted(query, len(collection)), explain=explain, keep_reads=reads)
            ids = collection.external_ids_of([c.row for c in outcome.candidates])
            with unavailable_segments() as unavailable:  # a shard that failed to give the page's records
                stored = collection.docstore.get_many(ids)
        degraded = outcome.degraded + sorted(unavailable - set(outcome.degraded))
        features: list[dict[str, float] | None] = [None] * len(ids)
        if outcome.features is not None:
            features = list(outcome.features)
        hits = [
            Hit(doc_id, c.score, (doc or {}).get("title", ""), dict(c.ranks), f)
            for doc_id, doc, c, f in zip(ids, stored, outcome.candidates, features, strict=True)
        ]
        return SearchAnswer(
            hits,
            degraded,
            self.version,
            outcome.scorer,
            outcome.took_ms,
            branch_ms=outcome.branch_ms,
            branch_counts={name: len(result) for name, result in outcome.branches.items()},
            explain=self._explain(outcome) if explain else None,
            scorer_version=outcome.scorer_version,
            scorer_reason=outcome.fallback if self.ranker.path is not None else None,
        )

    def _explain(self, outcome: SearchOutcome) -> dict[str, list[dict]]:
        """Each branch's own candidates with its scores, best first."""
        return {
            name: [
                {"id": doc_id, "rank": rank, "score": score}
                for rank, (doc_id, score) in enumerate(
                    zip(self.collection.external_ids_of(result.rows), result.scores.tolist(), strict=True),
                    start=1,
                )
            ]
            for name, result in outcome.branches.items()
        }

    def item(self, item_id: str) -> dict:
        """Stored fields of one item; UnknownItemError for an unknown id."""
        self.row(item_id)
        stored = self.collection.docstore.get(item_id)
        if stored is None:  # a row without a stored record answers like an unknown id
            raise UnknownItemError(self.collection.name, item_id)
        return stored

    def similar(self, item_id: str, k: int) -> SearchAnswer:
        """Items nearest to `item_id` in the transformer space, itself excluded; UnknownItemError for an
        unknown id."""
        collection = self.collection
        start = time.perf_counter()
        row = self.row(item_id)
        with unavailable_segments() as unavailable:  # shards that did not answer (a sharded version)
            vector = collection.vectors.reconstruct(np.array([row]))
            if unavailable:  # the item's own vector is missing: no neighbours to look for
                return SearchAnswer([], sorted(unavailable), self.version, SIMILAR_SCORER, 0.0)
            alive = collection.alive
            rows, scores = collection.vectors.search(
                vector, min(k + 1, len(collection)), allowed=None if alive is None else alive.copy()
            )
            pairs = [
                (r, s)
                for r, s in zip(rows[0].tolist(), scores[0].tolist(), strict=True)
                if r >= 0 and r != row
            ]
            ids = collection.external_ids_of([r for r, _ in pairs[:k]])
            stored = collection.docstore.get_many(ids)
        hits = [
            Hit(id=doc_id, score=score, title=(doc or {}).get("title", ""), branches={"dense": rank})
            for rank, (doc_id, doc, (_, score)) in enumerate(zip(ids, stored, pairs, strict=False), start=1)
        ]
        took_ms = (time.perf_counter() - start) * 1000
        return SearchAnswer(hits, sorted(unavailable), self.version, SIMILAR_SCORER, took_ms)

    def close(self) -> None:
        self._pool_owner.close()
        self.collection.close()


def _fitted(query: SearchQuery, n_rows: int) -> SearchQuery:
    """`query` with its allowed rows over `n_rows` rows: rows written after it was checked are not allowed
    (they did not exist when the request came in)."""
    allowed = query.allowed
    if allowed is None or len(allowed) >= n_rows:
        return query
    return dataclasses.replace(
        query, allowed=np.concatenate([allowed, np.zeros(n_rows - len(allowed), bool)])
    )
