"""A served collection: the loaded artifact, its pipeline, and hits resolved to external ids and fields."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ranker.scoring import Scorer
from retrieval.candidates import SearchQuery
from retrieval.collection import Collection
from retrieval.pipeline import PipelineConfig, SearchOutcome, SearchPipeline
from retrieval.sources import default_sources


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float
    title: str
    branches: dict[str, int]


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    hits: list[Hit]
    degraded: list[str]
    version: str
    scorer: str
    took_ms: float


class CollectionService:
    """Answers searches for one collection."""

    def __init__(self, collection: Collection, pipeline: SearchPipeline) -> None:
        self.collection = collection
        self.pipeline = pipeline

    @classmethod
    def open(
        cls,
        root: Path,
        *,
        name: str | None = None,
        scorer: Scorer | None = None,
        config: PipelineConfig | None = None,
    ) -> CollectionService:
        collection = Collection.load(root, name=name)
        collection.encoder.encode(["warm-up"])  # load the model now, not inside the first request's deadline
        return cls(collection, SearchPipeline(default_sources(collection), scorer=scorer, config=config))

    @property
    def version(self) -> str:
        return self.collection.version

    def run(self, text: str, k: int) -> SearchOutcome:
        """The pipeline's ranked candidates, with internal rows (for evaluation and explain)."""
        return self.pipeline.search(SearchQuery(text=text, k=k))

    def search(self, text: str, k: int) -> SearchAnswer:
        outcome = self.run(text, k)
        ids = self.collection.external_ids_of([c.row for c in outcome.candidates])
        stored = self.collection.docstore.get_many(ids)
        hits = [
            Hit(id=doc_id, score=c.score, title=(doc or {}).get("title", ""), branches=dict(c.ranks))
            for doc_id, doc, c in zip(ids, stored, outcome.candidates, strict=True)
        ]
        return SearchAnswer(hits, outcome.degraded, self.version, outcome.scorer, outcome.took_ms)

    def close(self) -> None:
        self.collection.close()
