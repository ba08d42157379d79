"""BM25 inverted index: term dictionary plus term-major CSR postings of precomputed impacts.

Scores equal those of ``bm25s.BM25(method="lucene")`` built on the same tokens: impacts are computed with
the same float arithmetic and a query's impacts are summed in float32 in query-token order (a token that
occurs twice in the query counts twice, as in bm25s), so scores are bit-identical.

Two search engines return the same exact top-k (ties broken by lower row), picked by ``engine``:

- ``"numba"`` (the default when numba imports): one compiled call per query or per batch
  (:mod:`indexer.inverted.kernels`): on large collections, tiers of decreasing impact are added until no
  unseen document can reach the top k, and the few candidates left are completed by search; otherwise,
  or when that would not pay, every posting is added and the accumulator ranked block by block;
- ``"numpy"``: collections up to ``_DENSE_MAX_DOCS`` documents add all postings into a dense accumulator;
  larger ones with few postings add them into a per-thread accumulator and rank the touched docs;
  otherwise MaxScore over impact tiers (:mod:`indexer.inverted.maxscore`), then exact rescoring.

Long posting lists are stored as impact tiers (highest impacts first, docs ascending inside each tier);
``term_segments``/``segment_bounds``/``segment_max`` describe the tiers.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.inverted.build import CorpusStats, build_postings, lucene_idf
from indexer.inverted.maxscore import Segment, candidates
from indexer.inverted.topk import EMPTY_ROWS, EMPTY_SCORES, top_k, top_k_dense

if TYPE_CHECKING:
    from indexer.inverted.compiled import CompiledSearch

FORMAT_VERSION = 1
ENGINES = ("numba", "numpy")
_UNKNOWN = itertools.repeat(-1)  # term id of a token not in the vocabulary, for the compiled engine
_FILES = {
    "indptr": "indptr.npy",
    "doc_ids": "doc_ids.npy",
    "impacts": "impacts.npy",
    "term_segments": "term_segments.npy",
    "segment_bounds": "segment_bounds.npy",
    "segment_max": "segment_max.npy",
}
CORPUS_DF = "corpus_df"  # with corpus statistics: each term's corpus document frequency (int64)
_VOCAB_FILE = "vocab.json"
_PARAMS_FILE = "params.json"
# Collections up to this size score every query into a dense vector: MaxScore's per-segment overhead
# only pays off on larger ones (measured break-even between 100k and 200k Zipf documents).
_DENSE_MAX_DOCS = 1 << 17
# On larger collections, queries with at most this many postings are scored exhaustively (no pruning).
_EXHAUSTIVE_MAX_POSTINGS = 20_000


class InvertedIndex:
    """Exact BM25 (Lucene variant) top-k retrieval over tokenised documents; rows are build order."""

    def __init__(
        self,
        vocab: dict[str, int],
        arrays: dict[str, np.ndarray],
        params: dict[str, Any],
        *,
        engine: str = "auto",
    ) -> None:
        self._vocab = vocab
        # Plain ndarray views of memory-mapped arrays: slicing an np.memmap is several times slower.
        arrays = {key: a.view(np.ndarray) if isinstance(a, np.memmap) else a for key, a in arrays.items()}
        self._indptr: np.ndarray = arrays["indptr"]
        self._doc_ids: np.ndarray = arrays["doc_ids"]
        self._impacts: np.ndarray = arrays["impacts"]
        self._term_segments: np.ndarray = arrays["term_segments"]
        self._segment_bounds: np.ndarray = arrays["segment_bounds"]
        self._segment_max: np.ndarray = arrays["segment_max"]
        self._corpus_df: np.ndarray | None = arrays.get(CORPUS_DF)
        self.params = params
        self._n = int(params["n_docs"])
        self._corpus_docs = int(params.get("corpus_docs", self._n))
        self._local = threading.local()
        self.engine = _pick_engine(engine)
        self._compiled: CompiledSearch | None = None
        if self.engine == "numba":
            from indexer.inverted.compiled import CompiledSearch  # imports numba: only when used

            self._compiled = CompiledSearch(self._n, arrays)
            self._compiled.warm()

    # ----------------------------------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        docs: Iterable[list[str]],
        *,
        k1: float = 1.5,
        b: float = 0.75,
        show_progress: bool = False,
        engine: str = "auto",
        stats: CorpusStats | None = None,
    ) -> InvertedIndex:
        """Index ``docs`` (lists of analyzed tokens); document ``i`` of the iterable gets row ``i``.

        ``engine`` is the search engine (`ENGINES`); "auto" is numba when it imports, else numpy. With
        ``stats`` (of a corpus the documents are part of, e.g. the other shards too), scores, `idf` and
        `document_frequency` are the corpus's (`indexer.inverted.build.CorpusStats`)."""
        if not k1 >= 0:
            raise ValueError(f"k1 must be >= 0, got {k1!r}")
        if not 0 <= b <= 1:
            raise ValueError(f"b must be in [0, 1], got {b!r}")
        post = build_postings(docs, float(k1), float(b), show_progress, stats)
        params: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "method": "lucene",
            "k1": float(k1),
            "b": float(b),
            "n_docs": post.n_docs,
            "vocab_size": len(post.vocab),
            "n_postings": len(post.doc_ids),
            "avg_doc_len": post.avg_doc_len,
        }
        arrays = {key: getattr(post, key) for key in _FILES}
        if post.corpus_df is not None:
            params["corpus_docs"] = post.corpus_docs
            arrays[CORPUS_DF] = post.corpus_df
        return cls(post.vocab, arrays, params, engine=engine)

    def __len__(self) -> int:
        return self._n

    # ------------------------------------------------------------------------------------------- io
    def save(self, directory: Path) -> list[str]:
        """Write the index into ``directory`` (created if needed); returns the file names written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for key, name in _FILES.items():
            np.save(directory / name, np.ascontiguousarray(getattr(self, "_" + key)), allow_pickle=False)
        extra = []
        if self._corpus_df is not None:
            np.save(directory / f"{CORPUS_DF}.npy", self._corpus_df, allow_pickle=False)
            extra.append(f"{CORPUS_DF}.npy")
        with open(directory / _VOCAB_FILE, "w", encoding="utf-8") as f:
            json.dump(self._vocab, f, ensure_ascii=False, separators=(",", ":"))
        with open(directory / _PARAMS_FILE, "w", encoding="utf-8") as f:
            json.dump(self.params, f, indent=2, sort_keys=True)
        return [*_FILES.values(), *extra, _VOCAB_FILE, _PARAMS_FILE]

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = True, engine: str = "auto") -> InvertedIndex:
        """Open an index written by :meth:`save`; with ``mmap`` the postings stay on disk. ``engine`` as
        in :meth:`build`; the numba kernels are compiled (or read from numba's cache) here."""
        directory = Path(directory)
        with open(directory / _PARAMS_FILE, encoding="utf-8") as f:
            params = json.load(f)
        if params.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"unsupported index format_version {params.get('format_version')!r} in {directory}; "
                f"this code reads version {FORMAT_VERSION}"
            )
        with open(directory / _VOCAB_FILE, encoding="utf-8") as f:
            vocab = json.load(f)
        arrays = {
            key: np.load(directory / name, mmap_mode="r" if mmap else None) for key, name in _FILES.items()
        }
        if "corpus_docs" in params:
            arrays[CORPUS_DF] = np.load(directory / f"{CORPUS_DF}.npy", allow_pickle=False)
        n_terms, n_post = int(params["vocab_size"]), int(params["n_postings"])
        if (
            len(vocab) != n_terms
            or arrays["indptr"].shape != (n_terms + 1,)
            or arrays["term_segments"].shape != (n_terms + 1,)
            or arrays["segment_bounds"].shape != (len(arrays["segment_max"]) + 1,)
            or arrays["doc_ids"].shape != (n_post,)
            or arrays["impacts"].shape != (n_post,)
        ):
            raise ValueError(f"index files in {directory} do not match {_PARAMS_FILE}")
        return cls(vocab, arrays, params, engine=engine)

    # --------------------------------------------------------------------------------------- search
    def search(
        self, query_tokens: list[str], k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows (int64) and scores (float32) with score > 0, best first, ties by lower row.

        ``allowed`` is an optional boolean mask over rows; only rows where it is True are returned.
        """
        if k.__class__ is not int or k < 1:
            _check_k(k)
        mask = None if allowed is None else self._check_allowed(allowed)
        if self._compiled is not None:
            if isinstance(query_tokens, str):
                self._term_ids(query_tokens)  # raises
            return self._compiled.search(list(map(self._vocab.get, query_tokens, _UNKNOWN)), k, mask)
        tids = self._term_ids(query_tokens)
        if not tids:
            return EMPTY_ROWS.copy(), EMPTY_SCORES.copy()
        return self._search_ids(tids, k, mask)

    def search_batch(self, queries: list[list[str]], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`search` for each query, in order (one compiled call for the whole batch)."""
        _check_k(k)
        if self._compiled is not None:
            if str in set(map(type, queries)):
                self._term_ids(next(q for q in queries if isinstance(q, str)))  # raises
            lengths = list(map(len, queries))
            flat = np.fromiter(
                map(self._vocab.get, itertools.chain.from_iterable(queries), _UNKNOWN),
                dtype=np.int64,
                count=sum(lengths),
            )
            return self._compiled.search_batch(flat, lengths, k)
        tid_lists = [self._term_ids(query) for query in queries]
        empty = (EMPTY_ROWS, EMPTY_SCORES)
        return [self._search_ids(t, k, None) if t else (empty[0].copy(), empty[1].copy()) for t in tid_lists]

    def score_rows(self, query_tokens: list[str], rows: np.ndarray) -> np.ndarray:
        """BM25 scores (float32) of ``query_tokens`` for the given rows, 0 where no term matches."""
        rows = np.asarray(rows)
        if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise ValueError(f"rows must be a 1-d integer array, got dtype {rows.dtype} shape {rows.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= self._n):
            raise ValueError(f"rows must be in [0, {self._n}), got values in [{rows.min()}, {rows.max()}]")
        return self._exact_scores(self._term_ids(query_tokens), rows.astype(np.int64, copy=False))

    def matches(self, query_tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every row with score > 0 (int64, ascending) and its score (float32, same as :meth:`search`)."""
        tids = self._term_ids(query_tokens)
        if not tids:
            return EMPTY_ROWS.copy(), EMPTY_SCORES.copy()
        ids, imps = self._gather(tids)
        ids = ids.astype(np.intp)
        acc = self._accumulator()
        try:
            np.add.at(acc, ids, imps)
            rows = np.unique(ids)
            return rows.astype(np.int64, copy=False), acc[rows]
        finally:
            acc[ids] = 0

    def document_frequency(self, term: str) -> int:
        """How many documents hold ``term`` (0 for a term not in the vocabulary): of the corpus when the
        index was built with its statistics."""
        tid = self._vocab.get(term)
        if tid is None:
            return 0
        if self._corpus_df is not None:
            return int(self._corpus_df[tid])
        return int(self._indptr[tid + 1] - self._indptr[tid])

    def idf(self, term: str) -> float:
        """Lucene idf of ``term`` as its impacts use it (before float32 rounding); 0.0 when no document
        of this index holds it, since such a term cannot add to any score."""
        df = self.document_frequency(term)
        return lucene_idf(df, self._corpus_docs) if df else 0.0

    # ------------------------------------------------------------------------------------- internals
    def _term_ids(self, query_tokens: list[str]) -> list[int]:
        if isinstance(query_tokens, str):
            raise ValueError(f"query_tokens must be a list of tokens, got the string {query_tokens[:40]!r}")
        get = self._vocab.get
        return [t for t in map(get, query_tokens) if t is not None]

    def _check_allowed(self, allowed: np.ndarray | None) -> np.ndarray | None:
        if allowed is None:
            return None
        if not isinstance(allowed, np.ndarray) or allowed.dtype != np.bool_ or allowed.shape != (self._n,):
            shape = getattr(allowed, "shape", None)
            dtype = getattr(allowed, "dtype", type(allowed).__name__)
            raise ValueError(
                f"allowed must be a boolean numpy array of shape ({self._n},), "
                f"got dtype {dtype} shape {shape}"
            )
        return allowed

    def _accumulator(self) -> np.ndarray:
        """Per-thread float32 accumulator of length n_docs; all zeros between queries."""
        acc = getattr(self._local, "acc", None)
        if acc is None:
            acc = np.zeros(self._n, dtype=np.float32)
            self._local.acc = acc
        return acc

    def _slots(self) -> np.ndarray:
        """Per-thread int32 scratch map of length n_docs; all zeros between queries."""
        slots = getattr(self._local, "slots", None)
        if slots is None:
            slots = np.zeros(self._n, dtype=np.int32)
            self._local.slots = slots
        return slots

    def _gather(self, tids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Doc ids and impacts of all query tokens' postings, concatenated in query-token order."""
        indptr = self._indptr
        spans = [slice(int(indptr[t]), int(indptr[t + 1])) for t in tids]
        if len(spans) == 1:
            return self._doc_ids[spans[0]], self._impacts[spans[0]]
        return (
            np.concatenate([self._doc_ids[span] for span in spans]),
            np.concatenate([self._impacts[span] for span in spans]),
        )

    def _search_ids(self, tids: list[int], k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if self._n <= _DENSE_MAX_DOCS:
            return self._dense(tids, k, mask)
        indptr = self._indptr
        counts: dict[int, int] = {}
        for t in tids:
            counts[t] = counts.get(t, 0) + 1
        if sum(int(indptr[t + 1] - indptr[t]) for t in counts) <= _EXHAUSTIVE_MAX_POSTINGS:
            return self._exhaustive(tids, k, mask)
        return self._maxscore(tids, counts, k, mask)

    def _dense(self, tids: list[int], k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Small collections: add every posting into a dense score vector (bm25s's float32 order)."""
        ids, imps = self._gather(tids)
        acc = self._accumulator()
        try:
            np.add.at(acc, ids, imps)
            return top_k_dense(acc if mask is None else np.where(mask, acc, np.float32(0)), k)
        finally:
            acc.fill(0)

    def _exhaustive(self, tids: list[int], k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Few postings: accumulate all of them in a sparse-touched accumulator, rank the touched docs."""
        ids, imps = self._gather(tids)
        ids = ids.astype(np.intp)  # intp indexing is ~3x faster than int32
        acc = self._accumulator()
        try:
            np.add.at(acc, ids, imps)
            vals = acc.take(ids)
        finally:
            acc[ids] = 0
        if mask is not None:
            keep = mask[ids]
            ids, vals = ids[keep], vals[keep]
        n, kq = len(vals), k * len(tids)
        if n > kq:
            # A doc occurs at most once per query token, so the entries at or above the (k * tokens)-th
            # largest value hold at least k distinct docs, and every doc left out scores below them.
            keep = vals >= np.partition(vals, n - kq)[n - kq]
            ids, vals = ids[keep], vals[keep]
        rows, first = np.unique(ids, return_index=True)
        return top_k(rows, vals[first], k)

    def _maxscore(
        self, tids: list[int], counts: dict[int, int], k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Long posting lists: MaxScore over impact segments, then exact scores for the survivors."""
        segs: list[Segment] = []
        for slot, (t, w) in enumerate(counts.items()):
            s0, s1, bounds = self._tiers(t)
            tops = self._segment_max[s0:s1].tolist()
            segs.extend(Segment(slot, bounds[i], bounds[i + 1], tops[i] * w, w) for i in range(s1 - s0))
        segs.sort(key=lambda seg: -seg.bound)
        buffers = (self._accumulator(), self._slots())
        rows = candidates(segs, (self._doc_ids, self._impacts), k, mask, buffers)
        return top_k(rows, self._exact_scores(tids, rows), k)

    def _tiers(self, t: int) -> tuple[int, int, list[int]]:
        """Term ``t``'s segments ``s0:s1`` and their posting bounds (``s1 - s0 + 1`` offsets)."""
        s0, s1 = int(self._term_segments[t]), int(self._term_segments[t + 1])
        return s0, s1, self._segment_bounds[s0 : s1 + 1].tolist()

    def _exact_scores(self, tids: list[int], rows: np.ndarray) -> np.ndarray:
        """Scores of ``rows`` summed in float32 in query-token order (bit-identical to bm25s)."""
        out = np.zeros(len(rows), dtype=np.float32)
        if not len(rows):
            return out
        doc_ids, impacts = self._doc_ids, self._impacts
        found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for t in tids:
            hit = found.get(t)
            if hit is None:
                sel_parts, imp_parts = [], []
                _, _, bounds = self._tiers(t)
                for lo, hi in itertools.pairwise(bounds):
                    ids = doc_ids[lo:hi]
                    pos = np.searchsorted(ids, rows)
                    np.minimum(pos, hi - lo - 1, out=pos)
                    sel = np.flatnonzero(ids[pos] == rows)
                    sel_parts.append(sel)
                    imp_parts.append(impacts[lo:hi][pos[sel]])
                if len(sel_parts) == 1:
                    hit = (sel_parts[0], imp_parts[0])
                else:
                    hit = (np.concatenate(sel_parts), np.concatenate(imp_parts))
                found[t] = hit
            out[hit[0]] += hit[1]
        return out


def _pick_engine(engine: str) -> str:
    if engine == "auto":
        return "numba" if importlib.util.find_spec("numba") is not None else "numpy"
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {['auto', *ENGINES]}")
    return engine


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
