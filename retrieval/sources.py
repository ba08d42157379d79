"""Recall branches: each is a named `CandidateSource` returning its own top-N for a query."""

from __future__ import annotations

from retrieval.candidates import BranchResult, CandidateSource, SearchQuery
from retrieval.collection import Collection


class Bm25Source:
    """Terms: BM25 over the inverted index, with the query analysed as the documents were."""

    name = "bm25"

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def enabled(self, query: SearchQuery) -> bool:
        return bool(query.text.strip())

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        tokens = self.collection.analyzer(query.text)
        rows, scores = self.collection.inverted.search(tokens, limit)
        return BranchResult(self.name, rows, scores)


class DenseSource:
    """Dense vectors: the transformer's query embedding against the ANN index of item embeddings."""

    name = "dense"

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def enabled(self, query: SearchQuery) -> bool:
        return bool(query.text.strip())

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        vector = self.collection.encoder.encode([query.text])
        rows, scores = self.collection.vectors.search(vector, min(limit, len(self.collection)))
        keep = rows[0] >= 0
        return BranchResult(self.name, rows[0][keep], scores[0][keep])


def default_sources(collection: Collection) -> list[CandidateSource]:
    return [Bm25Source(collection), DenseSource(collection)]
