"""BM25 inverted index (Lucene variant, scores identical to bm25s) with exact MaxScore top-k search.

Several fields with boosts are combined by `indexer.fields.FieldedBm25`, one `InvertedIndex` per field.
"""

from __future__ import annotations

from indexer.inverted.index import InvertedIndex

__all__ = ["InvertedIndex"]
