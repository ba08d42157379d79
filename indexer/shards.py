"""Sharded versions: the catalogue split into S consecutive row ranges, each with its own BM25 postings,
dense vectors and ANN index, and forward index, under ``shards/<i>/`` of the version.

BM25 is built with the whole corpus's statistics (`indexer.inverted.build.CorpusStats`: document count,
document frequencies, average length, computed over every shard), so a shard scores its items exactly as
the unsharded index does and the merged top k of the shards is the unsharded top k. Exact vector search
merges likewise; an approximate index (HNSW) per shard is approximate per shard. The rest of a version
(ids, keywords, numeric columns, Word2Vec, behaviour) stays whole. A service serves a sharded version in
one process (`retrieval.collection.Collection.load` reads the shards as segments of one row space,
`retrieval.segments`), and the layout is what a distributed service would spread over machines.

On disk, per shard ``i``: ``shards/i/bm25/`` (a `FieldedBm25` of that shard's rows, corpus statistics
inside), ``shards/i/dense/`` (its ANN index), ``shards/i/docstore/``; the manifest's ``params.shards``
lists each shard's first and last-plus-one row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from indexer.ann import make_index
from indexer.docstore import DocStore
from indexer.fields import Bm25Field, FieldedBm25
from indexer.inverted import InvertedIndex
from indexer.inverted.build import CorpusStats

SHARDS_DIR = "shards"


def shard_bounds(n_items: int, shards: int) -> list[tuple[int, int]]:
    """`shards` consecutive row ranges covering `n_items` rows, sizes differing by at most one."""
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    if shards > n_items:
        raise ValueError(f"{shards} shards for {n_items} items: each shard needs at least one item")
    cuts = [n_items * i // shards for i in range(shards + 1)]
    return list(pairwise(cuts))


def shard_dir(version: Path, shard: int) -> Path:
    return Path(version) / SHARDS_DIR / str(shard)


def write_bm25_shards(
    staging: Path,
    specs: Sequence[tuple[str, str, float, tuple[str, ...], list[list[str]]]],
    bounds: Sequence[tuple[int, int]],
    k1: float,
    b: float,
) -> None:
    """Each shard's BM25 fields; `specs` are (name, analyzer, boost, sources, token lists of every item)
    per field, every field's statistics taken over all items."""
    stats = [CorpusStats.of(tokens) for *_, tokens in specs]
    for shard, (lo, hi) in enumerate(bounds):
        fields = [
            Bm25Field(name, analyzer, boost, sources, InvertedIndex.build(tokens[lo:hi], k1=k1, b=b, stats=s))
            for (name, analyzer, boost, sources, tokens), s in zip(specs, stats, strict=True)
        ]
        FieldedBm25(fields).save(shard_dir(staging, shard) / "bm25")


def write_dense_shards(
    staging: Path, vectors: np.ndarray, bounds: Sequence[tuple[int, int]], backend: str, params: dict
) -> dict[str, Any]:
    """Each shard's ANN index over its rows' vectors; the parameters the manifest records."""
    resolved: dict[str, Any] = {}
    for shard, (lo, hi) in enumerate(bounds):
        index = make_index(backend, vectors.shape[1], **params)
        index.add(vectors[lo:hi])
        index.save(shard_dir(staging, shard) / "dense")
        resolved = index.params
    return resolved


def write_docstore_shards(
    staging: Path,
    ids: Sequence[str],
    record: Callable[[int], dict[str, Any]],
    bounds: Sequence[tuple[int, int]],
) -> None:
    """Each shard's forward index: the records of its rows."""
    for shard, (lo, hi) in enumerate(bounds):
        DocStore.write(
            shard_dir(staging, shard) / "docstore", ((ids[row], record(row)) for row in range(lo, hi))
        )
