"""Explicit registry of ANN backends: build one by name, or load whichever one a directory holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from indexer.ann.annoy import AnnoyIndex
from indexer.ann.base import BaseIndex, read_meta
from indexer.ann.exact import ExactIndex
from indexer.ann.faiss_hnsw import FaissHnswIndex
from indexer.ann.faiss_ivf import IvfFlatIndex, IvfPqIndex
from indexer.ann.hnsw import HnswIndex

BACKENDS: dict[str, type[BaseIndex]] = {
    "exact": ExactIndex,
    "hnsw": HnswIndex,
    "faiss_ivf_flat": IvfFlatIndex,
    "faiss_ivf_pq": IvfPqIndex,
    "faiss_hnsw": FaissHnswIndex,
    "annoy": AnnoyIndex,
}


def _backend(name: str) -> type[BaseIndex]:
    if name not in BACKENDS:
        raise ValueError(f"unknown ANN backend {name!r}; choose one of {sorted(BACKENDS)}")
    return BACKENDS[name]


def make_index(name: str, dim: int, *, metric: str = "cosine", **params: Any) -> BaseIndex:
    """A new empty index of backend ``name``; ``params`` are that backend's build/search parameters."""
    return _backend(name)(dim, metric=metric, **params)


def load_index(directory: Path) -> BaseIndex:
    """Load the index saved in ``directory``, whatever its backend (named in its ``index.json``)."""
    meta = read_meta(Path(directory))
    return _backend(meta["backend"]).load(Path(directory), meta)
