"""Approximate nearest-neighbour backends behind one `VectorIndex` protocol.

Usage::

    from indexer.ann import make_index, load_index
    index = make_index("hnsw", dim=384, metric="cosine", M=16, ef_construction=200)
    index.add(vectors)                      # float32 (n, 384); rows numbered 0..n-1 in add order
    rows, scores = index.search(queries, k=10, allowed=mask)
    files = index.save(directory)           # backend files + index.json
    index = load_index(directory)
    index.set_search_params(ef=128)
"""

from indexer.ann.base import METRICS, BaseIndex, VectorIndex
from indexer.ann.registry import BACKENDS, load_index, make_index

__all__ = ["BACKENDS", "METRICS", "BaseIndex", "VectorIndex", "load_index", "make_index"]
