"""`bm25`: boosted multi-field BM25, the query analysed by each field's analyzer as the documents were."""

from __future__ import annotations

from retrieval.candidates import BranchResult, SearchQuery
from retrieval.collection import Collection


class Bm25Source:
    name = "bm25"
    inline = True  # at most MAX_QUERY_TERMS posting lists per analyzer; no I/O (memory-mapped postings)

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def enabled(self, query: SearchQuery) -> bool:
        return bool(query.text.strip())

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        terms = self.collection.query_terms(query.text)
        rows, scores = self.collection.inverted.search(terms, limit, allowed=query.allowed)
        return BranchResult(self.name, rows, scores)
