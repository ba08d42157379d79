"""A loaded collection: the published indices and documents, with the analyzers and encoder they used.

Text search: ``collection.inverted.search(collection.query_terms(text), k)`` runs the boosted multi-field
BM25 with the query analysed by every field's analyzer (`indexer.fields.FieldedBm25`), a long query cut to
its most informative terms (`indexer.fields.prune_terms`). Filters:
``keyword_mask(field, values)``.
Numeric columns (geo, popularity, features): ``numeric(name)``; ``popularity`` prefers the behaviour log's
time-decayed popularity. ``behaviour`` (histories, item2vec) and ``text_vectors`` (Word2Vec) are None when
the version has none. What the build recorded (its configuration, encoder, optional parts) is read through
`indexer.manifests.CollectionParams`: a manifest lacking something is refused, never filled with a default.

`Collection.load` verifies the whole version before it opens anything (`indexer.artifact.read_manifest`: the
manifest's own checksum, then every file's size and sha256), so a damaged file is refused with an
`ArtifactError` naming it relative to the version. Nothing on the load path unpickles: arrays are ``.npy``
read with ``allow_pickle=False``, Word2Vec vectors ``.npy`` plus a JSON vocabulary (`indexer.word2vec`), the
rest JSON, RocksDB tables and the ANN libraries' own binary files; a version of format 1 with Word2Vec
(whose vectors were a pickle) is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from indexer.ann import VectorIndex, load_index
from indexer.artifact import ArtifactError, read_manifest
from indexer.behaviour import Behaviour
from indexer.build import read_ids
from indexer.docstore import DocStore
from indexer.encoders import AUTO, TextEncoder, index_cache_dir, make_query_encoder, query_encoder_kind
from indexer.encoders.query_cache import QueryCachedEncoder
from indexer.fields import Bm25Field, FieldedBm25, QueryTerms
from indexer.keywords import Keywords, load_columns
from indexer.manifests import COLLECTION_KIND, CollectionParams, collection_params, read_collection_params
from indexer.shards import shard_dir
from indexer.text_vectors import TextVectors
from indexer.versions import resolve_artifact
from retrieval.segments import (
    RowReads,
    SegmentedDocStore,
    SegmentedIndex,
    SegmentedVectors,
    ShardedParts,
    as_field_index,
)

log = logging.getLogger(__name__)

PICKLE_FREE_FORMAT = 2  # the first artifact format whose Word2Vec vectors are no pickle
# Opens a sharded version's shards: (version dir, analyzer, params.shards, ids) -> its segmented parts
ShardOpener = Callable[[Path, str, dict, list[str]], ShardedParts]


@dataclass
class Collection:
    """Everything the online side needs to answer for one collection; rows are internal, ids external."""

    name: str
    path: Path
    manifest: dict  # as written; what the online side reads of its params is `params`
    params: CollectionParams
    ids: list[str]
    inverted: FieldedBm25
    vectors: VectorIndex
    docstore: DocStore
    encoder: QueryCachedEncoder  # embeds the queries (`query_encoder_kind`), through the query cache
    keywords: Keywords = field(default_factory=lambda: Keywords({}))
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    behaviour: Behaviour | None = None
    text_vectors: TextVectors | None = None
    alive: np.ndarray | None = None  # False for rows deleted since the build (`retrieval.live_writes`)
    row_reads: RowReads | None = None  # shards served elsewhere: a request's rows read in one call each

    @classmethod
    def load(
        cls,
        root: Path,
        *,
        name: str | None = None,
        encoder: TextEncoder | None = None,
        query_encoder: str = AUTO,
        shard_opener: ShardOpener | None = None,
    ) -> Collection:
        """Load the current version of `root` (or a version directory), verifying every checksum.

        Queries are embedded by the kind `query_encoder` picks (`indexer.encoders.query_encoder_kind`) for
        the kind the manifest records as used (`params.encoder.kind`, what a build's ``auto`` resolved to):
        with ``auto``, ONNX int8 for a MiniLM collection, or the build's own kind should the ONNX model fail
        to load. `encoder` is reused when it is of the kind picked. A sharded version's shards are opened
        by `shard_opener` (default: in this process, `open_local_shards`; on Ray Serve:
        `retrieval.ray_shards.ray_shard_opener`)."""
        path = resolve_artifact(root)
        manifest = read_manifest(path, kind=COLLECTION_KIND)
        params = collection_params(path, manifest)
        if params.word2vec.trained and manifest["format_version"] < PICKLE_FREE_FORMAT:
            raise ArtifactError(
                f"{path}: word2vec/model/vectors.kv holds the Word2Vec vectors as a gensim pickle (artifact "
                f"format {manifest['format_version']}); searchrec loads no pickles. Rebuild the index "
                "(searchrec build) to store them as .npy and JSON.",
                path=path,
                file="word2vec/model/vectors.kv",
            )
        ids = read_ids(path)
        shards = manifest["params"].get("shards")
        built = params.encoder.kind
        kind = query_encoder_kind(built, query_encoder)
        if encoder is None or encoder.kind != kind:
            encoder = _query_encoder(
                kind, built, path, params.config.encoder_batch_size, fallback=query_encoder == AUTO
            )
        keywords = Keywords.load(path / "keywords", len(ids))
        columns = load_columns(path / "columns")
        behaviour = Behaviour(path / "behaviour", ids) if params.behaviour is not None else None
        text_vectors = TextVectors(path / "word2vec") if params.word2vec.trained else None
        # last: the parts that hold handles to close (RocksDB; shards deployed elsewhere), so nothing that
        # can still fail comes after them
        row_reads = None
        if shards:
            opener = shard_opener or open_local_shards
            inverted, vectors, docstore, row_reads = opener(path, params.config.analyzer, shards, ids)
        else:
            inverted = FieldedBm25.load(path / "bm25", default_analyzer=params.config.analyzer)
            vectors = load_index(path / "dense")
            docstore = DocStore.open(path / "docstore")
        inverted.analyze("warm up 预热")  # load dictionaries (jieba: ~1 s) now, not in the first request
        return cls(
            name=name or params.name or Path(root).name,
            path=path,
            manifest=manifest,
            params=params,
            ids=ids,
            inverted=inverted,
            vectors=vectors,
            docstore=docstore,
            encoder=encoder if isinstance(encoder, QueryCachedEncoder) else QueryCachedEncoder(encoder),
            keywords=keywords,
            columns=columns,
            behaviour=behaviour,
            text_vectors=text_vectors,
            row_reads=row_reads,
        )

    @property
    def version(self) -> str:
        return str(self.manifest["parts"]["version"])

    @property
    def built_with(self) -> str:
        """The encoder kind that embedded the documents (the query encoder may be another of its space)."""
        return self.params.encoder.kind

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def row_of(self) -> dict[str, int]:
        return {doc_id: row for row, doc_id in enumerate(self.ids)}

    def external_ids_of(self, rows: list[int] | np.ndarray) -> list[str]:
        return [self.ids[row] for row in (rows.tolist() if isinstance(rows, np.ndarray) else rows)]

    def query_terms(self, text: str) -> QueryTerms:
        """`text` analysed by every analyzer the BM25 fields use, at most `indexer.fields.MAX_QUERY_TERMS`
        distinct terms each (`FieldedBm25.query_terms`): the argument of `inverted.search`."""
        return self.inverted.query_terms(text)

    def batched_reads(self, rows: np.ndarray, text: str) -> AbstractContextManager[None]:
        """A block within which the ranker's per-row reads of `rows` for the query `text` come from one
        fetch per shard, when the shards are served elsewhere (`retrieval.segments.RowReads`)."""
        if self.row_reads is None:
            return nullcontext()
        return self.row_reads.batched(rows, self.query_terms(text))

    @property
    def keyword_fields(self) -> list[str]:
        return sorted(self.keywords.fields)

    def keyword_mask(self, field: str, values: str | Iterable[str]) -> np.ndarray:
        """Boolean mask over rows: True where keyword `field` holds any of `values` ."""
        return self.keywords.mask(field, [values] if isinstance(values, str) else values)

    @property
    def numeric_names(self) -> list[str]:
        return sorted(self.columns)

    def numeric(self, name: str) -> np.ndarray:
        """The float64 column `name` (NaN = missing) over rows, memory-mapped; ValueError when absent."""
        if name not in self.columns:
            raise ValueError(f"no numeric column {name!r}; this collection has {self.numeric_names}")
        return self.columns[name]

    @property
    def popularity(self) -> np.ndarray | None:
        """Time-decayed behaviour popularity when events were built in, else the popularity column."""
        if self.behaviour is not None:
            return self.behaviour.popularity
        return self.columns.get("popularity")

    @property
    def added_events(self) -> int:
        """Behaviour events added since the load (the service's real-time writes). `popularity` includes
        them, so a value derived from it is stale once this count has moved."""
        return 0 if self.behaviour is None else self.behaviour.added_events

    def is_deleted(self, row: int) -> bool:
        return self.alive is not None and not self.alive[row]

    def delete_row(self, row: int) -> None:
        """Leave `row` out of every answer from now on (a delete written after the build)."""
        if self.alive is None:
            alive = np.ones(len(self.ids), dtype=bool)
            alive[row] = False
            self.alive = alive
        else:
            self.alive[row] = False

    def close(self) -> None:
        self.docstore.close()


def open_local_shards(path: Path, analyzer: str, shards: dict, ids: list[str]) -> ShardedParts:
    """A sharded version's BM25, dense index and forward index (`indexer.shards`), each shard a segment of
    one row space (`retrieval.segments`)."""
    sizes = [stop - start for start, stop in shards["rows"]]
    parts = [shard_dir(path, shard) for shard in range(int(shards["count"]))]
    per_shard = [FieldedBm25.load(part / "bm25", default_analyzer=analyzer) for part in parts]
    fields = []
    for i, first in enumerate(per_shard[0].fields):
        index = as_field_index(SegmentedIndex([shard.fields[i].index for shard in per_shard]))
        fields.append(Bm25Field(first.name, first.analyzer, first.boost, first.sources, index))
    vectors = SegmentedVectors([load_index(part / "dense") for part in parts])
    stores = SegmentedDocStore([DocStore.open(part / "docstore") for part in parts], sizes, ids)
    return ShardedParts(FieldedBm25(fields), vectors, stores)


def query_kind_of(root: Path, query_encoder: str = AUTO) -> str:
    """The kind that would embed the queries of `root`'s current version under the `query_encoder` setting
    (before any fallback); ValueError when the setting is unknown or does not fit the build."""
    built = read_collection_params(resolve_artifact(root), verify=False).encoder.kind
    return query_encoder_kind(built, query_encoder)


def _query_encoder(kind: str, built: str, path: Path, batch_size: int, *, fallback: bool) -> TextEncoder:
    """A loaded encoder of `kind` for the queries of the version at `path`. With `fallback` (the ``auto``
    setting), a `kind` other than the build's that fails to load (e.g. the ONNX export cannot be made) is
    replaced by the build's own kind, with a warning, rather than failing the collection."""
    cache_dir = index_cache_dir(path.parent.parent)  # ROOT/versions/<v> -> ROOT: a build's ONNX export
    encoder = make_query_encoder(kind, cache_dir=cache_dir, batch_size=batch_size)
    if not fallback or kind == built:
        return encoder
    try:
        encoder.encode_queries(["warm-up"])
    except (ImportError, OSError, RuntimeError, ValueError) as error:
        log.warning("query encoder %s failed to load (%r); embedding queries with %s", kind, error, built)
        return make_query_encoder(built, cache_dir=cache_dir, batch_size=batch_size)
    return encoder
