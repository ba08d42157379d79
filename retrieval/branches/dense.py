"""`dense`: the encoder's query embedding against the ANN index of item embeddings.

An English-only encoder (all-MiniLM-L6-v2: `multilingual` False) embeds a mostly Chinese, Japanese or Korean
query close to noise (nDCG@10 0.30 on XQuAD-R zh against BM25's 0.84), so the gate keeps the branch out of
such requests instead of letting it dilute the fusion. A multilingual encoder (multilingual-e5-small, what a
build picks for a mostly non-Latin corpus) serves every query.

A collection whose items carried their own vectors (encoder kind ``supplied``) has no encoder for text
queries: the gate stays closed, and its vectors serve `/similar` and the ranker's item-vector features.
"""

from __future__ import annotations

from indexer.analysis import script_counts
from indexer.encoders import SUPPLIED
from retrieval.candidates import BranchResult, SearchQuery
from retrieval.collection import Collection


def cjk_share(text: str) -> float:
    """Fraction of the letters in `text` that are CJK ideographs, kana or hangul."""
    counts = script_counts(text)
    letters = sum(counts.values())
    return (counts["han"] + counts["kana"] + counts["hangul"]) / letters if letters else 0.0


class DenseSource:
    name = "dense"
    inline = False  # the model releases the GIL: it runs in parallel with the inline branches

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def enabled(self, query: SearchQuery) -> bool:
        encoder = self.collection.encoder
        if not query.text.strip() or encoder.kind == SUPPLIED:
            return False
        return encoder.multilingual or cjk_share(query.text) < 0.5

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        vector = self.collection.encoder.encode_queries([query.text])
        query.query_vectors["dense"] = vector[0]
        rows, scores = self.collection.vectors.search(
            vector, min(limit, len(self.collection)), allowed=query.allowed
        )
        keep = rows[0] >= 0
        return BranchResult(self.name, rows[0][keep], scores[0][keep])
