"""Vectorised construction of BM25 postings (CSR by term) from tokenised documents.

Impacts reproduce the arithmetic of the ``bm25s`` library with ``method="lucene"`` bit for bit:
``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` stored as float32, the term-frequency part
``tf / (k1 * (1 - b + b * dl / avgdl) + tf)`` in float64, their product rounded to float32.

N, df and avgdl are the documents' own unless `CorpusStats` of a larger corpus are given: a shard built
with its whole corpus's statistics holds exactly the impacts an index of the whole corpus gives its
documents, so merging the shards' top k gives the whole index's top k. Partial statistics (one per
partition of the input) add up with `CorpusStats.merge`.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

# Postings are turned into impacts in chunks of this many entries to bound temporary memory.
_CHUNK = 1 << 23
# Posting lists longer than this are split into impact tiers; tier sizes grow geometrically.
TIER_MIN_DF = 4096
_FIRST_TIER = 1024
_TIER_GROWTH = 4


@dataclass(frozen=True)
class CorpusStats:
    """What BM25 needs to know of a whole corpus: its document count, total length in tokens and the
    document frequency of each term."""

    n_docs: int
    total_len: int
    df: Mapping[str, int] = field(default_factory=dict)

    @property
    def avg_doc_len(self) -> float:
        """Tokens per document, equal to the mean an index of the whole corpus computes."""
        return self.total_len / self.n_docs if self.n_docs else 0.0

    @classmethod
    def of(cls, docs: Iterable[list[str]]) -> CorpusStats:
        """The statistics of tokenised documents."""
        n_docs = total = 0
        df: Counter[str] = Counter()
        for doc in docs:
            n_docs += 1
            total += len(doc)
            df.update(set(doc))
        return cls(n_docs, total, dict(df))

    @classmethod
    def merge(cls, parts: Iterable[CorpusStats]) -> CorpusStats:
        """The statistics of the union of disjoint document sets, from each set's."""
        n_docs = total = 0
        df: Counter[str] = Counter()
        for part in parts:
            n_docs += part.n_docs
            total += part.total_len
            df.update(part.df)
        return cls(n_docs, total, dict(df))


@dataclass
class Postings:
    """Term-major CSR postings: docs of term ``t`` are ``doc_ids[indptr[t]:indptr[t + 1]]`` (ascending)."""

    vocab: dict[str, int]
    indptr: np.ndarray  # int64, len V + 1
    doc_ids: np.ndarray  # int32, len P
    impacts: np.ndarray  # float32, len P, BM25 contribution of one occurrence of the term in the query
    term_segments: np.ndarray  # int64, len V + 1: segments of term t are term_segments[t]:term_segments[t+1]
    segment_bounds: np.ndarray  # int64, len S + 1: segment s covers postings segment_bounds[s]:...[s + 1]
    segment_max: np.ndarray  # float32, len S, largest impact in each segment (non-increasing within a term)
    n_docs: int
    avg_doc_len: float
    corpus_df: np.ndarray | None = None  # int64 per term: its corpus document frequency, with CorpusStats
    corpus_docs: int | None = None  # the corpus's document count, with CorpusStats


def _token_ids(
    docs: Iterable[list[str]], show_progress: bool
) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """Map tokens to ids in order of first appearance; return vocab, flat token ids and doc lengths."""
    ids: defaultdict[str, int] = defaultdict()
    ids.default_factory = ids.__len__  # a new term gets the next id
    flat = array("i")
    lens = array("q")
    if show_progress:
        from tqdm.auto import tqdm

        docs = tqdm(docs, desc="index documents", unit="doc")
    for doc in docs:
        if isinstance(doc, str):
            raise ValueError(f"each document must be a list of tokens, got the string {doc[:40]!r}")
        before = len(flat)
        flat.extend(map(ids.__getitem__, doc))
        lens.append(len(flat) - before)
    vocab = dict(ids)
    return vocab, np.frombuffer(flat, dtype=np.int32), np.frombuffer(lens, dtype=np.int64)


def lucene_idf(df: int, n_docs: int) -> float:
    """Lucene idf of a term held by `df` of `n_docs` documents, with ``math.log`` exactly as bm25s does."""
    return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))


def _idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """Lucene idf per term (`lucene_idf`), stored as float32."""
    values = [lucene_idf(d, n_docs) for d in df.tolist()]
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def build_postings(
    docs: Iterable[list[str]],
    k1: float,
    b: float,
    show_progress: bool = False,
    stats: CorpusStats | None = None,
) -> Postings:
    """Count term frequencies with one sort of (term, doc) keys and precompute BM25 impacts, with the
    documents' own statistics or, given `stats`, those of the corpus they are part of."""
    vocab, tokens, lens = _token_ids(docs, show_progress)
    n_docs, n_terms = len(lens), len(vocab)
    if n_docs == 0:
        raise ValueError("cannot build an index from 0 documents")
    avg_doc_len = float(lens.mean()) if stats is None else stats.avg_doc_len
    key = tokens.astype(np.int64)
    key *= n_docs
    key += np.repeat(np.arange(n_docs, dtype=np.int64), lens)
    del tokens
    key.sort()
    change = np.empty(len(key), dtype=bool)
    change[:1] = True
    np.not_equal(key[1:], key[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    del change
    n_post = len(starts)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1:] = len(key)
    terms = key[starts] // n_docs
    df = np.bincount(terms, minlength=n_terms)
    del terms
    if stats is None:
        corpus_df, idf = None, _idf(df, n_docs)
    else:
        corpus_df = _corpus_df(vocab, stats)
        idf = _idf(corpus_df, stats.n_docs)
    # Same float64 expression as bm25s: k1 * ((1 - b) + b * l_d / l_avg) per document.
    norm = k1 * ((1 - b) + b * lens.astype(np.float64) / np.float64(avg_doc_len))
    doc_ids = np.empty(n_post, dtype=np.int32)
    impacts = np.empty(n_post, dtype=np.float32)
    for lo in range(0, n_post, _CHUNK):
        hi = min(lo + _CHUNK, n_post)
        k = key[starts[lo:hi]]
        t = k // n_docs
        d = k - t * n_docs
        tf = (ends[lo:hi] - starts[lo:hi]).astype(np.float32).astype(np.float64)
        doc_ids[lo:hi] = d
        impacts[lo:hi] = idf[t].astype(np.float64) * (tf / (norm[d] + tf))
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    term_segments, segment_bounds = _tier(indptr, doc_ids, impacts)
    segment_max = (
        np.maximum.reduceat(impacts, segment_bounds[:-1]) if n_post else np.zeros(0, dtype=np.float32)
    )
    return Postings(
        vocab,
        indptr,
        doc_ids,
        impacts,
        term_segments,
        segment_bounds,
        segment_max,
        n_docs,
        avg_doc_len,
        corpus_df,
        None if stats is None else stats.n_docs,
    )


def _corpus_df(vocab: dict[str, int], stats: CorpusStats) -> np.ndarray:
    """Corpus document frequency per term id; ValueError for a term the statistics do not hold (they were
    computed over other documents)."""
    missing = [term for term in vocab if stats.df.get(term, 0) < 1]
    if missing:
        raise ValueError(
            f"the corpus statistics hold no document with {missing[:5]}: they are of other documents"
        )
    return np.fromiter((stats.df[term] for term in vocab), dtype=np.int64, count=len(vocab))


def _tier(indptr: np.ndarray, doc_ids: np.ndarray, impacts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split long posting lists in place into impact tiers (highest first), docs ascending in each tier.

    Returns ``term_segments`` (CSR over segments) and ``segment_bounds`` (CSR over postings).
    """
    df = np.diff(indptr)
    n_seg = np.ones(len(df), dtype=np.int64)
    bounds: list[np.ndarray] = []
    for t in np.flatnonzero(df > TIER_MIN_DF).tolist():
        lo, hi = int(indptr[t]), int(indptr[t + 1])
        imp = impacts[lo:hi]
        sizes = []
        size, total = _FIRST_TIER, 0
        while total + size < (hi - lo) - size:
            sizes.append(size)
            total += size
            size *= _TIER_GROWTH
        cuts = np.cumsum(sizes)
        # Value of the last posting inside each tier, in decreasing order.
        thresholds = -np.partition(-imp, cuts - 1)[cuts - 1]
        tier = np.searchsorted(-thresholds, -imp, side="left").astype(np.int8)
        order = np.argsort(tier, kind="stable")
        counts = np.bincount(tier, minlength=len(cuts) + 1)
        counts = counts[counts > 0]
        doc_ids[lo:hi] = doc_ids[lo:hi][order]
        impacts[lo:hi] = imp[order]
        n_seg[t] = len(counts)
        bounds.append(lo + np.cumsum(counts)[:-1])
    term_segments = np.zeros(len(df) + 1, dtype=np.int64)
    np.cumsum(n_seg, out=term_segments[1:])
    segment_bounds = np.sort(np.concatenate([indptr, *bounds])) if bounds else indptr.copy()
    return term_segments, segment_bounds
