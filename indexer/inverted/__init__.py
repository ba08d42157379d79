"""BM25 inverted index (Lucene variant, scores identical to bm25s) with exact MaxScore top-k search."""

from __future__ import annotations

from indexer.inverted.fielded import FieldedIndex
from indexer.inverted.index import InvertedIndex

__all__ = ["FieldedIndex", "InvertedIndex"]
