"""Multi-field BM25: one `InvertedIndex` per field, each with its own analyzer and boost, searched as one.

A document's score is ``sum(boost_f * bm25_f(query, doc))`` over the fields. A query is analysed once per
distinct analyzer (`FieldedBm25.analyze` returns ``{analyzer name: tokens}``) and each field reads the tokens
of its analyzer, so one text field can be indexed twice, e.g. as jieba words and as single characters.

`search` is exact: it takes each field's top `depth` rows, scores their union exactly in every field, and
stops once the k-th combined score beats the best an unseen row could reach (the sum of each field's
`depth`-th score, 0 for a field whose list was not full); otherwise it doubles `depth`.

Long queries (query-by-document) are bounded by `query_terms`: under each analyzer, a query with more than
`MAX_QUERY_TERMS` distinct terms keeps only its most informative ones (`prune_terms`); shorter queries are
exactly `analyze`'s tokens, so their scores do not change. `query_terms` remembers the terms of the last
`QUERY_CACHE_SIZE` texts (`query_cache`, thread-safe): a request reads them in several places (the BM25
branch, the ranker's features) and popular queries come back.

On disk (``bm25/``): ``fields.json`` (name, analyzer, boost, sources per field, in order) and one
subdirectory per field holding that field's `InvertedIndex`.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.analysis import make_analyzer
from indexer.encoders.query_cache import QUERY_CACHE_SIZE, LruCache, text_key
from indexer.inverted import InvertedIndex
from indexer.inverted.topk import EMPTY_ROWS, EMPTY_SCORES, top_k

FIELDS_FILE = "fields.json"
QueryTerms = dict[str, list[str]]  # analyzer name -> query tokens
# Distinct terms a query keeps per analyzer. A query's BM25 cost grows with its distinct terms (one posting
# list each); 64 is above every judged query we evaluate (SciFact's longest has 23 distinct terms, XQuAD-R
# zh's 39 single characters), so their results do not move; a pasted document reads at most 64 lists.
MAX_QUERY_TERMS = 64


def prune_terms(tokens: list[str], idf: Callable[[str], float], limit: int = MAX_QUERY_TERMS) -> list[str]:
    """`tokens` cut to their `limit` most informative distinct terms; `tokens` itself when they have no more.

    The rule: rank distinct terms by ``tf(query) * idf`` (idf 0 for a term no document holds: it cannot
    match, so it is the first to go), ties by first occurrence in the query; keep the top `limit`. Kept
    terms keep every occurrence, in query order, so their query-tf multiplicity counts in BM25 as before.
    """
    if limit < 1:
        raise ValueError(f"limit must be a positive number of terms, got {limit!r}")
    tf = Counter(tokens)
    if len(tf) <= limit:
        return tokens
    weight = {term: count * idf(term) for term, count in tf.items()}
    # Counter keeps first-occurrence order and sorted() is stable, so equal weights stay in query order.
    keep = set(sorted(tf, key=lambda term: -weight[term])[:limit])
    return [token for token in tokens if token in keep]


@dataclass(frozen=True)
class Bm25Field:
    name: str
    analyzer: str
    boost: float
    sources: tuple[str, ...]
    index: InvertedIndex

    def describe(self) -> dict:
        return {
            "name": self.name,
            "analyzer": self.analyzer,
            "boost": self.boost,
            "sources": list(self.sources),
        }


class FieldedBm25:
    """Boosted sum of per-field BM25 scores; rows are build order, shared by every field."""

    def __init__(self, fields: Sequence[Bm25Field], *, max_query_terms: int = MAX_QUERY_TERMS) -> None:
        if not fields:
            raise ValueError("a FieldedBm25 needs at least one field")
        sizes = {len(f.index) for f in fields}
        if len(sizes) != 1:
            raise ValueError(f"every field must index the same rows; got sizes {sorted(sizes)}")
        if max_query_terms < 1:
            raise ValueError(f"max_query_terms must be a positive number of terms, got {max_query_terms!r}")
        self.fields = list(fields)
        self.max_query_terms = max_query_terms
        self._n = sizes.pop()
        self._local = threading.local()
        # (text digest, max_query_terms) -> {analyzer: tokens} as tuples, so no caller can change an entry
        self.query_cache: LruCache[tuple[bytes, int], dict[str, tuple[str, ...]]] = LruCache(QUERY_CACHE_SIZE)

    def __len__(self) -> int:
        return self._n

    @property
    def analyzers(self) -> list[str]:
        """Distinct analyzer names, in field order; the first is the primary one."""
        return list(dict.fromkeys(f.analyzer for f in self.fields))

    def analyze(self, text: str) -> QueryTerms:
        """The query's tokens under every analyzer the fields use (analyzers are kept per thread)."""
        cache = getattr(self._local, "analyzers", None)
        if cache is None:
            cache = self._local.analyzers = {name: make_analyzer(name) for name in self.analyzers}
        return {name: analyzer(text) for name, analyzer in cache.items()}

    def query_terms(self, text: str) -> QueryTerms:
        """`analyze(text)` with each analyzer's tokens cut to `max_query_terms` distinct terms by
        `prune_terms`; a term's idf is its highest over the fields that use that analyzer. What every
        query-side reader (BM25 and geo branches, ranker features) passes to `search` and `score_rows`.
        Remembered per text (`query_cache`); every call returns fresh lists."""
        key = (text_key(text), self.max_query_terms)
        terms = self.query_cache.get(key)
        if terms is None:
            analyzed = self.analyze(text).items()
            terms = {name: tuple(self._prune(name, tokens)) for name, tokens in analyzed}
            self.query_cache.put(key, terms)
        return {name: list(tokens) for name, tokens in terms.items()}

    def _prune(self, analyzer: str, tokens: list[str]) -> list[str]:
        indexes = [f.index for f in self.fields if f.analyzer == analyzer]
        return prune_terms(tokens, lambda term: max(i.idf(term) for i in indexes), self.max_query_terms)

    def _terms_by_field(self, terms: Sequence[str] | Mapping[str, list[str]]) -> list[list[str]]:
        if isinstance(terms, str):
            raise ValueError(f"terms must be tokens or {{analyzer: tokens}}, got the string {terms[:40]!r}")
        if isinstance(terms, Mapping):
            missing = [a for a in self.analyzers if a not in terms]
            if missing:
                raise ValueError(f"no tokens for analyzer(s) {missing}; pass analyze(text)")
            return [list(terms[f.analyzer]) for f in self.fields]
        if len(self.analyzers) > 1:
            raise ValueError(
                f"fields use analyzers {self.analyzers}; pass {{analyzer: tokens}} from analyze(text)"
            )
        return [list(terms)] * len(self.fields)

    def search(
        self, terms: Sequence[str] | Mapping[str, list[str]], k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` rows (int64) and summed boosted scores (float32) > 0, best first, ties by lower row.

        `terms` is `analyze(text)`; a plain token list is accepted when every field shares one analyzer.
        `allowed` is an optional boolean mask over rows.
        """
        per_field = self._terms_by_field(terms)
        active = [(f, t) for f, t in zip(self.fields, per_field, strict=True) if t]
        if not active:
            return EMPTY_ROWS.copy(), EMPTY_SCORES.copy()
        if len(active) == 1:
            field, tokens = active[0]
            rows, scores = field.index.search(tokens, k, allowed=allowed)
            return rows, (scores * np.float32(field.boost)).astype(np.float32)
        depth = k
        while True:
            lists = [f.index.search(t, depth, allowed=allowed) for f, t in active]
            rows = np.unique(np.concatenate([r for r, _ in lists]))
            scores = self._sum(active, rows)
            full = [len(r) == depth for r, _ in lists]
            bound = sum(
                f.boost * float(s[-1])
                for (f, _), (_, s), is_full in zip(active, lists, full, strict=True)
                if is_full
            )
            best_rows, best_scores = top_k(rows, scores, k)
            if bound == 0.0 or (len(best_rows) == k and float(best_scores[-1]) > bound) or depth >= self._n:
                return best_rows, best_scores
            depth = min(depth * 4, self._n)

    def score_rows(self, terms: Sequence[str] | Mapping[str, list[str]], rows: np.ndarray) -> np.ndarray:
        """Summed boosted scores (float32) of the given rows, 0 where no field matches."""
        per_field = self._terms_by_field(terms)
        return self._sum(list(zip(self.fields, per_field, strict=True)), np.asarray(rows, dtype=np.int64))

    def coverage(self, terms: Sequence[str] | Mapping[str, list[str]], rows: np.ndarray) -> np.ndarray:
        """Per row, the largest share over fields of the query's distinct terms that the row contains.

        Unlike a BM25 score it ignores length and term weights: "Springfield" covers a city with fifty
        alternate names as fully as a village with one, and "York" covers half of "New York".
        """
        rows = np.asarray(rows, dtype=np.int64)
        best = np.zeros(len(rows), dtype=np.float64)
        for field, tokens in zip(self.fields, self._terms_by_field(terms), strict=True):
            distinct = list(dict.fromkeys(tokens))
            if not distinct:
                continue
            matched = sum((field.index.score_rows([t], rows) > 0).astype(np.float64) for t in distinct)
            best = np.maximum(best, matched / len(distinct))
        return best

    @staticmethod
    def _sum(active: list[tuple[Bm25Field, list[str]]], rows: np.ndarray) -> np.ndarray:
        total = np.zeros(len(rows), dtype=np.float32)
        for field, tokens in active:
            if tokens:
                total += np.float32(field.boost) * field.index.score_rows(tokens, rows)
        return total

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for field in self.fields:
            field.index.save(directory / field.name)
        described = [f.describe() for f in self.fields]
        (directory / FIELDS_FILE).write_text(json.dumps(described, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, *, default_analyzer: str = "english") -> FieldedBm25:
        """Open what `save` wrote; a bare `InvertedIndex` directory loads as one field 'content'."""
        directory = Path(directory)
        if not (directory / FIELDS_FILE).is_file():
            index = InvertedIndex.load(directory)
            return cls([Bm25Field("content", default_analyzer, 1.0, (), index)])
        described = json.loads((directory / FIELDS_FILE).read_text(encoding="utf-8"))
        return cls(
            [
                Bm25Field(
                    d["name"],
                    d["analyzer"],
                    float(d["boost"]),
                    tuple(d["sources"]),
                    InvertedIndex.load(directory / d["name"]),
                )
                for d in described
            ]
        )
