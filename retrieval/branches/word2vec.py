"""`w2v`: the query's SIF-weighted Word2Vec vector against the index of document vectors."""

from __future__ import annotations

from retrieval.candidates import BranchResult, SearchQuery
from retrieval.collection import Collection


class Word2VecSource:
    name = "w2v"
    inline = True  # a weighted mean of word vectors and one ANN search

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def enabled(self, query: SearchQuery) -> bool:
        return self.collection.text_vectors is not None and bool(query.text.strip())

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        assert self.collection.text_vectors is not None  # the gate guarantees it
        rows, scores = self.collection.text_vectors.search(query.text, limit, allowed=query.allowed)
        return BranchResult(self.name, rows, scores)
