"""Sharded versions: the catalogue split into S consecutive row ranges, each with its own BM25 postings,
dense vectors and ANN index, and forward index, under ``shards/<i>/`` of the version.

BM25 is built with the whole corpus's statistics (`indexer.inverted.build.CorpusStats`: document count,
document frequencies, average length, computed over every shard), so a shard scores its items exactly as
the unsharded index does and the merged top k of the shards is the unsharded top k. Exact vector search
merges likewise; an approximate index (HNSW) per shard is approximate per shard. The rest of a version
(ids, keywords, numeric columns, Word2Vec, behaviour) stays whole. A service serves a sharded version in
one process (`retrieval.collection.Collection.load` reads the shards as segments of one row space,
`retrieval.segments`), and the layout is what a distributed service would spread over machines.

What runs where: the build's driver analyses (or gathers the analysis), computes the corpus statistics over
every item, and cuts the inputs into per-shard slices; each shard's part is then written by one call of a
module-level function here (`write_bm25_shard`, `write_dense_shard`, `write_docstore_shard`), given to an
`Each`: `in_process` runs the calls one after another in this process (a build without a cluster), an
`indexer.ray_build.RayBuild` runs them as Ray tasks, one CPU each, so the shards' HNSW graphs (built by one
thread each) grow in parallel. Those tasks write into the version's staging folder themselves, so the index
root must be on storage every worker can write: on a local Ray, the same filesystem; on a cluster, a shared
one. Either way a shard's BM25 and ANN files are the same bytes (RocksDB gives every forward index store
ids of its own), and a retried task rewrites its folder from scratch.

On disk, per shard ``i``: ``shards/i/bm25/`` (a `FieldedBm25` of that shard's rows, corpus statistics
inside), ``shards/i/dense/`` (its ANN index), ``shards/i/docstore/``; the manifest's ``params.shards``
lists each shard's first and last-plus-one row (``rows``) and its digest (``sha256``, `shard_checksums`:
a sha256 over its files' paths and sha256s, which tells one shard apart from another version's without
reading its files). Each file's own sha256 is in the manifest's ``files``: a process that serves one
shard checks that shard's files against them when it loads it (`retrieval.ray_shards.ShardReplica`).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from indexer.ann import make_index
from indexer.docstore import DocStore
from indexer.fields import Bm25Field, FieldedBm25
from indexer.inverted import InvertedIndex
from indexer.inverted.build import CorpusStats
from indexer.item_parts import record_of
from indexer.items import Item

SHARDS_DIR = "shards"
# One BM25 field: name, analyzer, boost, source text fields, the token lists of its rows.
FieldTokens = tuple[str, str, float, tuple[str, ...], list[list[str]]]
T = TypeVar("T")


class Each(Protocol):
    """Runs ``work(*shared, *job)`` for every job and returns the results in the jobs' order. `work` is a
    module-level function (a cluster ships it by name); `shared` is what every job reads, shipped once."""

    def __call__(
        self, work: Callable[..., T], jobs: Sequence[tuple[Any, ...]], shared: tuple[Any, ...] = ()
    ) -> list[T]: ...


def in_process(
    work: Callable[..., T], jobs: Sequence[tuple[Any, ...]], shared: tuple[Any, ...] = ()
) -> list[T]:
    """The `Each` of a build without a cluster: the jobs one after another, in this process."""
    return [work(*shared, *job) for job in jobs]


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
    specs: Sequence[FieldTokens],
    bounds: Sequence[tuple[int, int]],
    k1: float,
    b: float,
    each: Each = in_process,
) -> None:
    """Each shard's BM25 fields, one `write_bm25_shard` job per shard run by `each`; `specs` hold every
    item's token lists per field, and each field's statistics are taken over all items, here."""
    stats = [CorpusStats.of(tokens) for *_, tokens in specs]
    jobs = []
    for shard, (lo, hi) in enumerate(bounds):
        sliced: dict[int, list[list[str]]] = {}  # fields sharing token lists share their slice: sent once
        for *_, tokens in specs:
            if id(tokens) not in sliced:
                sliced[id(tokens)] = tokens[lo:hi]
        fields = [
            (name, analyzer, boost, sources, sliced[id(tokens)])
            for name, analyzer, boost, sources, tokens in specs
        ]
        jobs.append((_part_dir(staging, shard, "bm25"), fields))
    each(write_bm25_shard, jobs, shared=(stats, k1, b))


def write_bm25_shard(
    stats: Sequence[CorpusStats], k1: float, b: float, directory: Path, fields: Sequence[FieldTokens]
) -> None:
    """One shard's `FieldedBm25` into `directory`: each field over the shard's rows, scored with the whole
    corpus's statistics of that field (`stats`, in field order)."""
    built = [
        Bm25Field(name, analyzer, boost, sources, InvertedIndex.build(tokens, k1=k1, b=b, stats=field_stats))
        for (name, analyzer, boost, sources, tokens), field_stats in zip(fields, stats, strict=True)
    ]
    FieldedBm25(built).save(_fresh(directory))


def write_dense_shards(
    staging: Path,
    vectors: np.ndarray,
    bounds: Sequence[tuple[int, int]],
    backend: str,
    params: dict,
    each: Each = in_process,
) -> dict[str, Any]:
    """Each shard's ANN index over its rows' vectors, one `write_dense_shard` job per shard run by `each`;
    the parameters the manifest records."""
    jobs = [(_part_dir(staging, shard, "dense"), vectors[lo:hi]) for shard, (lo, hi) in enumerate(bounds)]
    return each(write_dense_shard, jobs, shared=(backend, params))[-1]


def write_dense_shard(backend: str, params: dict, directory: Path, vectors: np.ndarray) -> dict[str, Any]:
    """One shard's ANN index of `backend` over `vectors` into `directory`; its resolved parameters."""
    index = make_index(backend, vectors.shape[1], **params)
    index.add(vectors)
    index.save(_fresh(directory))
    return index.params


def write_docstore_shards(
    staging: Path, items: Sequence[Item], bounds: Sequence[tuple[int, int]], each: Each = in_process
) -> None:
    """Each shard's forward index, one `write_docstore_shard` job per shard run by `each`."""
    jobs = [
        (_part_dir(staging, shard, "docstore"), list(items[lo:hi])) for shard, (lo, hi) in enumerate(bounds)
    ]
    each(write_docstore_shard, jobs)


def write_docstore_shard(directory: Path, items: Sequence[Item]) -> None:
    """One shard's forward index into `directory`: its items' records (`record_of`) by id."""
    DocStore.write(_fresh(directory), ((item.id, record_of(item)) for item in items))


def shard_checksum(files: Mapping[str, str]) -> str:
    """The sha256 of one shard, from the sha256 of each of its files by path relative to the shard's
    folder: over the UTF-8 lines ``<file sha256>  <path>`` in path order (``sha256sum``'s lines)."""
    lines = "".join(f"{files[path]}  {path}\n" for path in sorted(files))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def shard_checksums(files: Mapping[str, str], count: int) -> list[str]:
    """Each of `count` shards' `shard_checksum`, from the sha256 of a version's files by path relative to
    the version (a manifest's ``files``)."""
    checksums = []
    for shard in range(count):
        prefix = f"{SHARDS_DIR}/{shard}/"
        own = {path[len(prefix) :]: sha for path, sha in files.items() if path.startswith(prefix)}
        checksums.append(shard_checksum(own))
    return checksums


def _part_dir(staging: Path, shard: int, part: str) -> Path:
    """Where a shard's part goes, as an absolute path: a worker's working folder is not the driver's."""
    return (shard_dir(staging, shard) / part).absolute()


def _fresh(directory: Path) -> Path:
    """`directory`, emptied: a shard's job owns its folder, and one retried after a lost worker starts
    afresh rather than over a half-written part."""
    if directory.exists():
        shutil.rmtree(directory)
    return directory
