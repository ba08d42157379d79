"""The delta segment: items written after the build (`PUT /collections/{name}/items/{id}`) on top of the
published version, under the same row numbers, so every branch, filter and ranker feature reads them
through the interfaces it already uses.

The version's rows stay as built (0..n-1); written items get the next rows (n, n+1, ...), and an item that
replaces a built one gets a new row while its old row is deleted (`Collection.alive`). `extend` returns a
new `Collection` over n + d rows whose parts answer for both:

- BM25 (`SegmentedIndex`, one per field): the version's postings, and the written items' term frequencies
  scored with **the version's statistics** (document count, document frequencies, average length) as if
  they had been indexed with it: an item written unchanged scores exactly as its built row. The
  approximation: written items do not change those statistics (idf and average length move with the next
  build), and a term no built item holds gets the idf of a term held by one item.
- dense and Word2Vec vectors (`SegmentedVectors`): the version's ANN index, and an exact search over the
  written items' vectors, merged by score. Written items are embedded by the service's encoder of the
  collection's space (for MiniLM collections the ONNX int8 encoder: cosine >= 0.99 to the build's fp32
  vectors) and by the version's Word2Vec exactly as the build embeds documents.
- forward index (`DocOverlay`), keyword fields (`SegmentedKeywordField`: values first seen in a written
  item get new codes), numeric columns (lat/lon, popularity, features), behaviour arrays (popularity,
  item2vec vectors: a written item has none until a build learns one).

A new segment is built per batch of writes (O(n) copies of the per-row arrays, so batch large imports) and
the service swaps to it; requests in flight finish on the parts they started with.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer.analysis import make_analyzer
from indexer.ann import VectorIndex
from indexer.behaviour import Behaviour
from indexer.docstore import DocStore
from indexer.fields import Bm25Field, FieldedBm25
from indexer.inverted import InvertedIndex
from indexer.inverted.build import CorpusStats
from indexer.item_parts import field_text, keyword_values, numeric_values, record_of
from indexer.items import Item
from indexer.keywords import KeywordField, Keywords
from retrieval.collection import Collection
from retrieval.segments import ExactVectors, SegmentedIndex, SegmentedVectors, as_field_index


@dataclass(frozen=True)
class WrittenItem:
    """One item as written, with what every part of the version holds of it (computed once, when the write
    is applied)."""

    item: Item
    record: dict[str, Any]  # the forward-index record, as the build writes it
    tokens: tuple[tuple[str, ...], ...]  # per BM25 field, in field order: the analysed text
    keywords: dict[str, list[str]]  # keyword field -> values
    numbers: dict[str, float | None]  # numeric column -> value
    dense: np.ndarray  # (dim,) unit vector in the collection's transformer space
    w2v: np.ndarray | None  # (dim,) Word2Vec vector, when the version has Word2Vec


def written_items(collection: Collection, items: Sequence[Item]) -> list[WrittenItem]:
    """What each part of `collection`'s version holds of each of `items`, computed as the build computes it
    (the dense vector: the item's own in a collection of supplied vectors, else the service's encoder of
    the collection's space, one text per call: the int8 encoder quantises per batch, so an item's vector
    does not depend on what was written with it)."""
    schema = collection.params.config.items
    analyzers = [make_analyzer(field.analyzer) for field in collection.inverted.fields]
    written = []
    for item in items:
        text = item.text()
        w2v = collection.text_vectors.embed(text) if collection.text_vectors is not None else None
        dense = item.vector if item.vector is not None else collection.encoder.encode([text])[0]
        tokens = tuple(
            tuple(analyze(field_text(item, field.sources)))
            for analyze, field in zip(analyzers, collection.inverted.fields, strict=True)
        )
        written.append(
            WrittenItem(
                item=item,
                record=record_of(item),
                tokens=tokens,
                keywords=keyword_values(item, schema),
                numbers=numeric_values(item, schema),
                dense=np.asarray(dense, dtype=np.float32),
                w2v=None if w2v is None else np.asarray(w2v, dtype=np.float32),
            )
        )
    return written


# ------------------------------------------------------------------------------------------------ BM25
def delta_index(base: Any, docs: Sequence[Sequence[str]]) -> InvertedIndex:
    """The written items of one BM25 field as an index of their own, built with the statistics of the
    version's index `base` (`indexer.inverted.build.CorpusStats`), so each scores as if `base` had been
    built with it; a term no built item holds counts as held by one. Rows are positions among the items."""
    n_docs = int(base.params.get("corpus_docs", len(base)))
    total_len = round(float(base.params["avg_doc_len"]) * n_docs)  # the built total: lengths are whole
    terms = {term for tokens in docs for term in tokens}
    stats = CorpusStats(
        n_docs, total_len, {term: max(int(base.document_frequency(term)), 1) for term in terms}
    )
    k1, b = float(base.params["k1"]), float(base.params["b"])
    return InvertedIndex.build([list(tokens) for tokens in docs], k1=k1, b=b, stats=stats, engine="numpy")


# ------------------------------------------------------------------------------ documents and keywords
class DocOverlay:
    """The forward index with the written items' records in front of the version's."""

    def __init__(self, base: DocStore, records: Mapping[str, dict[str, Any]]) -> None:
        self.base = base
        self.records = dict(records)

    def get(self, item_id: str) -> dict[str, Any] | None:
        record = self.records.get(item_id)
        return record if record is not None else self.base.get(item_id)

    def get_many(self, ids: Sequence[str]) -> list[dict[str, Any] | None]:
        found = self.base.get_many([i for i in ids if i not in self.records])
        built = iter(found)
        return [self.records[i] if i in self.records else next(built) for i in ids]

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.records or item_id in self.base

    def close(self) -> None:
        self.base.close()


class SegmentedKeywordField:
    """A keyword field over the version's rows and the written ones; a value first seen in a written item
    gets the next code."""

    def __init__(self, base: KeywordField, written: Sequence[Sequence[str]]) -> None:
        self.base = base
        self.name = base.name
        self.n_rows = base.n_rows + len(written)
        self.values = list(base.values)
        code_of = {value: code for code, value in enumerate(self.values)}
        self._added: dict[str, list[int]] = {}
        for position, values in enumerate(written):
            for value in dict.fromkeys(values):
                if value not in code_of:
                    code_of[value] = len(self.values)
                    self.values.append(value)
                self._added.setdefault(value, []).append(base.n_rows + position)
        self.codes: np.ndarray | None = None
        if base.codes is not None and all(len(set(v)) <= 1 for v in written):
            added = [code_of[v[0]] if v else -1 for v in written]
            self.codes = np.concatenate([np.asarray(base.codes), np.asarray(added, dtype=np.int32)])

    def rows(self, value: str) -> np.ndarray:
        added = np.asarray(self._added.get(value, ()), dtype=np.int32)
        return np.concatenate([self.base.rows(value), added]) if added.size else self.base.rows(value)

    def postings(self) -> tuple[np.ndarray, np.ndarray]:
        lists = [self.rows(value) for value in self.values]
        offsets = np.zeros(len(lists) + 1, dtype=np.int64)
        np.cumsum([len(rows) for rows in lists], out=offsets[1:])
        flat = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
        return offsets, flat.astype(np.int64)

    def mask(self, values: Iterable[str]) -> np.ndarray:
        out = np.zeros(self.n_rows, dtype=bool)
        for value in [values] if isinstance(values, str) else values:
            out[self.rows(value)] = True
        return out

    def counts(self) -> dict[str, int]:
        counts = self.base.counts()
        for value, rows in self._added.items():
            counts[value] = counts.get(value, 0) + len(rows)
        return counts


# ---------------------------------------------------------------------------------------- the segment
def extend(
    built: Collection, current: Collection, written: Sequence[WrittenItem], alive: np.ndarray
) -> Collection:
    """`built` (a collection as loaded) with every `written` item as rows len(built), len(built) + 1, ...;
    `current` is the segment it replaces (its behaviour arrays, which events change, grow by the newly
    written items), `alive` (over every row) leaves out deleted and replaced rows."""
    fields = []
    for i, field in enumerate(built.inverted.fields):
        docs = [w.tokens[i] for w in written]
        delta = [delta_index(field.index, docs)] if docs else []
        index = SegmentedIndex([*_segments_of(field.index), *delta])
        fields.append(
            Bm25Field(field.name, field.analyzer, field.boost, field.sources, as_field_index(index))
        )
    keywords: dict[str, Any] = {
        name: SegmentedKeywordField(field, [w.keywords.get(name, []) for w in written])
        for name, field in built.keywords.fields.items()
    }
    columns = {
        name: np.concatenate([np.asarray(values), _numbers(written, name)])
        for name, values in built.columns.items()
    }
    text_vectors = built.text_vectors
    if text_vectors is not None:
        word_vectors = [w.w2v if w.w2v is not None else np.zeros(0, np.float32) for w in written]
        text_vectors = copy.copy(text_vectors)
        text_vectors.index = _with_vectors(text_vectors.index, _stack(word_vectors))
    ids = [*built.ids, *(w.item.id for w in written)]
    return dataclasses.replace(
        built,
        ids=ids,
        inverted=FieldedBm25(fields, max_query_terms=built.inverted.max_query_terms),
        vectors=_with_vectors(built.vectors, _stack([w.dense for w in written])),
        docstore=_as_docstore(DocOverlay(built.docstore, {w.item.id: w.record for w in written})),
        keywords=Keywords(keywords),
        columns=columns,
        behaviour=_behaviour(current.behaviour, len(ids) - len(current), ids),
        text_vectors=text_vectors,
        alive=alive,
    )


# The segment's parts stand in for the version's by duck typing: they answer the calls the branches, the
# service and the ranker features make.
def _segments_of(index: Any) -> list[Any]:
    """The segments of a version's index: a sharded version's shards, else the index itself."""
    return list(index.segments) if isinstance(index, SegmentedIndex | SegmentedVectors) else [index]


def _with_vectors(base: VectorIndex, vectors: np.ndarray) -> VectorIndex:
    """`base` followed by a segment of the written items' vectors, searched exactly."""
    written = ExactVectors(vectors, int(base.dim), base.params)
    return SegmentedVectors([*_segments_of(base), written])  # type: ignore[return-value]


def _as_docstore(overlay: DocOverlay) -> DocStore:
    return overlay  # type: ignore[return-value]


def _stack(vectors: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack(vectors).astype(np.float32) if vectors else np.zeros((0,), dtype=np.float32)


def _numbers(written: Sequence[WrittenItem], name: str) -> np.ndarray:
    values = [w.numbers.get(name) for w in written]
    return np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)


def _grown(array: np.ndarray, n: int, dtype: Any = None) -> np.ndarray:
    """`array` followed by `n` zero rows (a copy)."""
    array = np.asarray(array, dtype=dtype)
    return np.concatenate([array, np.zeros((n, *array.shape[1:]), dtype=array.dtype)])


def _behaviour(built: Behaviour | None, n_written: int, ids: list[str]) -> Behaviour | None:
    """The behaviour arrays with rows for `n_written` more items (`ids`: every row's id): no events, no
    item2vec vector yet. Histories (and events added since the build) stay shared with `built`."""
    if built is None:
        return None
    extended = copy.copy(built)
    extended.item_ids = ids
    extended.popularity = _grown(built.popularity, n_written, np.float64)
    extended.counts = _grown(built.counts, n_written)
    if built.item_vectors is not None:
        extended.item_vectors = _grown(built.item_vectors, n_written)
    if built.item_known is not None:
        extended.item_known = _grown(built.item_known, n_written, bool)
    return extended
