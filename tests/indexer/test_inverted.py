"""Tests for the BM25 inverted index: equality with bm25s, exact top-k, filtering and persistence."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bm25s
import numpy as np
import pytest

import indexer.inverted.build as build_module
import indexer.inverted.index as inverted_module
import indexer.inverted.maxscore as maxscore_module
from indexer.analysis import make_analyzer
from indexer.inverted import InvertedIndex

SCIFACT = Path(__file__).resolve().parents[2] / "data" / "scifact"

HAND_CORPUS = [
    ["the", "cat", "sat", "on", "the", "mat"],
    ["the", "dog", "sat", "on", "the", "log", "the", "dog"],
    ["cats", "and", "dogs", "are", "friends"],
    ["a", "cat", "a", "dog", "a", "cat", "a", "dog", "a", "cat"],
    ["mat", "log", "mat", "log"],
    ["friends"],
    [],
]


def _bm25s(docs: list[list[str]], k1: float = 1.5, b: float = 0.75) -> bm25s.BM25:
    retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
    retriever.index(docs, show_progress=False)
    return retriever


def _brute_force(index: InvertedIndex, query: list[str], k: int, allowed: np.ndarray | None = None):
    scores = index.score_rows(query, np.arange(len(index)))
    rows = np.flatnonzero((scores > 0) & (True if allowed is None else allowed))
    order = np.lexsort((rows, -scores[rows]))[:k]
    return rows[order], scores[rows][order]


def _zipf_corpus(n_docs: int, vocab: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1) ** 1.1
    lens = rng.integers(5, 40, n_docs)
    flat = rng.choice(vocab, size=int(lens.sum()), p=p / p.sum())
    words = [f"w{i}" for i in range(vocab)]
    return [[words[t] for t in doc] for doc in np.split(flat, np.cumsum(lens)[:-1])]


@pytest.mark.parametrize(("k1", "b"), [(1.5, 0.75), (0.9, 0.4), (1.2, 1.0)])
def test_scores_equal_bm25s_on_hand_corpus(k1: float, b: float) -> None:
    index = InvertedIndex.build(HAND_CORPUS, k1=k1, b=b)
    reference = _bm25s(HAND_CORPUS, k1=k1, b=b)
    for query in [["cat"], ["dog", "log"], ["cat", "cat", "mat"], ["friends", "dogs", "the"], ["mat", "log"]]:
        expected = reference.get_scores(query)
        got = index.score_rows(query, np.arange(len(HAND_CORPUS)))
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
        rows, scores = index.search(query, 3)
        np.testing.assert_allclose(scores, np.sort(expected)[::-1][: len(scores)], atol=1e-5, rtol=0)
        np.testing.assert_array_equal(got[rows], scores)
    assert index.params["n_docs"] == len(index) == len(HAND_CORPUS)
    assert index.params["method"] == "lucene" and index.params["k1"] == k1 and index.params["b"] == b


def test_duplicate_query_tokens_count_twice_like_bm25s() -> None:
    index = InvertedIndex.build(HAND_CORPUS)
    once = index.score_rows(["cat", "mat"], np.arange(len(index)))
    twice = index.score_rows(["cat", "cat", "mat"], np.arange(len(index)))
    cat = index.score_rows(["cat"], np.arange(len(index)))
    np.testing.assert_allclose(twice, once + cat, rtol=1e-6)
    assert cat[0] > 0


def test_document_frequency_and_idf_of_the_hand_corpus() -> None:
    index = InvertedIndex.build(HAND_CORPUS)
    assert index.document_frequency("cat") == 2  # rows 0 and 3; row 3 holds it three times
    assert index.document_frequency("friends") == 2 and index.document_frequency("and") == 1
    assert index.document_frequency("unicorn") == 0
    assert index.idf("cat") == math.log(1 + (7 - 2 + 0.5) / (2 + 0.5))  # ln 3.2, the Lucene idf
    assert index.idf("and") == math.log(1 + 6.5 / 1.5)
    assert index.idf("unicorn") == 0.0  # matches nothing, so informs nothing
    # The same idf the impacts use: row 2 holds "and" once in 5 tokens, the mean length is 34 / 7.
    norm = 1.5 * (0.25 + 0.75 * 5 / (34 / 7))
    impact = np.float32(float(np.float32(index.idf("and"))) * (1 / (norm + 1)))
    assert index.score_rows(["and"], np.array([2]))[0] == impact


@pytest.fixture(scope="module")
def scifact_1000() -> tuple[list[list[str]], list[list[str]]]:
    analyzer = make_analyzer("english")
    docs = []
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        for line, _ in zip(f, range(1000), strict=False):
            doc = json.loads(line)
            docs.append(analyzer(doc["title"] + " " + doc["text"]))
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as f:
        queries = [analyzer(json.loads(line)["text"]) for line, _ in zip(f, range(50), strict=False)]
    return docs, queries


def test_top10_equals_bm25s_on_scifact_slice(scifact_1000: tuple[list[list[str]], list[list[str]]]) -> None:
    docs, queries = scifact_1000
    index = InvertedIndex.build(docs)
    reference = _bm25s(docs)
    tied_boundaries = 0
    for query, (rows, scores) in zip(queries, index.search_batch(queries, 10), strict=True):
        ref_docs, ref_scores = reference.retrieve([query], k=10, show_progress=False)
        positive = ref_scores[0] > 0
        ref_docs, ref_scores = ref_docs[0][positive], ref_scores[0][positive]
        np.testing.assert_array_equal(scores, ref_scores)  # bit-identical float32 sums
        full = reference.get_scores(query) if len(ref_scores) else np.zeros(len(docs), np.float32)
        np.testing.assert_array_equal(full[rows], scores)
        if len(scores) and np.count_nonzero(full == scores[-1]) > np.count_nonzero(scores == scores[-1]):
            tied_boundaries += 1  # bm25s breaks ties arbitrarily; we take the lower rows
        else:
            assert set(rows.tolist()) == set(ref_docs.tolist())
    assert tied_boundaries <= 5  # measured 0 on this slice


# numpy engine: variant -> (search method expected, maxscore settings patched); each must be exact.
VARIANTS = {
    "dense": ("_dense", {}),
    "exhaustive": ("_exhaustive", {}),
    "maxscore": ("_maxscore", {}),
    "maxscore-binary-search": ("_maxscore", {"_SEARCH_RATIO": 0}),
    "maxscore-scan": ("_maxscore", {"_SEARCH_RATIO": 10**9}),
    "maxscore-dense-switch": ("_maxscore", {"DENSE_SWITCH": 0.01}),
    "maxscore-few-bits": ("_maxscore", {"_MAX_BITS": 1}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_numpy_search_strategy_is_exact(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_module, "TIER_MIN_DF", 50)  # small impact tiers so MaxScore can prune
    monkeypatch.setattr(build_module, "_FIRST_TIER", 8)
    docs = _zipf_corpus(3000, 2000, seed=0)
    index = InvertedIndex.build(docs, engine="numpy")
    assert len(index._segment_max) > index.params["vocab_size"]  # some lists were split into tiers
    method, settings = VARIANTS[variant]
    if method != "_dense":
        monkeypatch.setattr(inverted_module, "_DENSE_MAX_DOCS", 0)
    if method == "_maxscore":
        monkeypatch.setattr(inverted_module, "_EXHAUSTIVE_MAX_POSTINGS", 0)
    for name, value in settings.items():
        monkeypatch.setattr(maxscore_module, name, value)
    calls: list[str] = []
    spied = ["_dense", "_exhaustive", "_maxscore"]
    for name in spied:
        original = getattr(InvertedIndex, name)
        monkeypatch.setattr(
            InvertedIndex, name, lambda self, *a, _f=original, _n=name: calls.append(_n) or _f(self, *a)
        )
    for name in ["_complete", "_finish_dense"]:
        original = getattr(maxscore_module, name)
        monkeypatch.setattr(
            maxscore_module, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a)
        )
    rng = np.random.default_rng(1)
    allowed = rng.random(len(docs)) < 0.3
    for _ in range(40):
        query = [f"w{t - 1}" for t in rng.zipf(1.2, rng.integers(1, 7)) if t <= 2000]
        for k in (1, 10, 100):
            for mask in (None, allowed):
                rows, scores = index.search(query, k, allowed=mask)
                exp_rows, exp_scores = _brute_force(index, query, k, mask)
                np.testing.assert_array_equal(rows, exp_rows)
                np.testing.assert_array_equal(scores, exp_scores)
    assert calls.count(method) > 200 and {c for c in calls if c in spied} == {method}
    if method == "_maxscore":
        assert calls.count("_complete") > 20  # phase 2 ran, i.e. phase 1 stopped early
    if variant == "maxscore-dense-switch":
        assert calls.count("_finish_dense") > 20


def test_allowed_mask_filters_and_fills_k() -> None:
    docs = _zipf_corpus(500, 300, seed=2)
    index = InvertedIndex.build(docs)
    allowed = np.zeros(len(docs), dtype=bool)
    allowed[::3] = True
    query = ["w0", "w5", "w17"]
    matching = np.flatnonzero(index.score_rows(query, np.arange(len(docs))) > 0)
    assert np.count_nonzero(allowed[matching]) >= 20
    rows, scores = index.search(query, 20, allowed=allowed)
    assert len(rows) == 20 and allowed[rows].all()
    assert np.all(np.diff(scores) <= 0)
    unfiltered, _ = index.search(query, 20)
    assert not allowed[unfiltered].all()
    none_allowed, _ = index.search(query, 5, allowed=np.zeros(len(docs), dtype=bool))
    assert len(none_allowed) == 0


def test_empty_and_unknown_queries_return_empty_arrays() -> None:
    index = InvertedIndex.build(HAND_CORPUS)
    for query in [[], ["zebra"], ["zebra", "unicorn"]]:
        rows, scores = index.search(query, 5)
        assert rows.dtype == np.int64 and scores.dtype == np.float32
        assert len(rows) == len(scores) == 0
    assert [len(r) for r, _ in index.search_batch([[], ["cat"], ["zebra"]], 5)] == [0, 2, 0]
    rows, _ = index.search(["friends"], 10)
    assert rows.tolist() == [5, 2]  # only docs with score > 0, fewer than k


def test_bad_arguments_raise_value_error() -> None:
    index = InvertedIndex.build(HAND_CORPUS)
    with pytest.raises(ValueError, match="k must be"):
        index.search(["cat"], 0)
    with pytest.raises(ValueError, match="allowed"):
        index.search(["cat"], 3, allowed=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="allowed"):
        index.search(["cat"], 3, allowed=np.ones(len(HAND_CORPUS)))
    with pytest.raises(ValueError, match="list of tokens"):
        index.search("cat", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rows"):
        index.score_rows(["cat"], np.array([len(HAND_CORPUS)]))
    with pytest.raises(ValueError, match="b must be"):
        InvertedIndex.build(HAND_CORPUS, b=1.5)
    with pytest.raises(ValueError, match="0 documents"):
        InvertedIndex.build([])


def test_save_load_roundtrip_with_mmap(tmp_path: Path) -> None:
    docs = _zipf_corpus(800, 500, seed=3)
    index = InvertedIndex.build(docs)
    written = index.save(tmp_path / "bm25")
    assert sorted(written) == sorted(p.name for p in (tmp_path / "bm25").iterdir())
    loaded = InvertedIndex.load(tmp_path / "bm25")
    assert isinstance(loaded._impacts.base, np.memmap) and isinstance(loaded._doc_ids.base, np.memmap)
    assert loaded.params == index.params and len(loaded) == len(index)
    queries = [["w1", "w7"], ["w3", "w3", "w40", "w100"], ["w499"], ["nothing"]]
    for query in queries:
        for got, expected in zip(loaded.search(query, 10), index.search(query, 10), strict=True):
            np.testing.assert_array_equal(got, expected)
    in_memory = InvertedIndex.load(tmp_path / "bm25", mmap=False)
    assert not isinstance(in_memory._impacts.base, np.memmap)
    np.testing.assert_array_equal(in_memory.search(["w1"], 5)[0], index.search(["w1"], 5)[0])


def test_load_rejects_mismatched_files(tmp_path: Path) -> None:
    InvertedIndex.build(HAND_CORPUS).save(tmp_path)
    np.save(tmp_path / "impacts.npy", np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="do not match"):
        InvertedIndex.load(tmp_path)


def test_matches_returns_every_scoring_row() -> None:
    index = InvertedIndex.build(HAND_CORPUS)
    rows, scores = index.matches(["dog", "friends", "zebra"])
    full = index.score_rows(["dog", "friends", "zebra"], np.arange(len(HAND_CORPUS)))
    assert rows.tolist() == np.flatnonzero(full).tolist() == [1, 2, 3, 5]
    np.testing.assert_array_equal(scores, full[rows])


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_concurrent_searches_match_sequential(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inverted_module, "_DENSE_MAX_DOCS", 0)  # exercise the shared-buffer strategies
    monkeypatch.setattr(inverted_module, "_EXHAUSTIVE_MAX_POSTINGS", 500)
    index = InvertedIndex.build(_zipf_corpus(2000, 1000, seed=7), engine=engine)
    rng = np.random.default_rng(8)
    queries = [[f"w{t - 1}" for t in rng.zipf(1.2, 4) if t <= 1000] for _ in range(200)]
    expected = index.search_batch(queries, 10)
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda q: index.search(q, 10), queries))
    for (rows, scores), (exp_rows, exp_scores) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(rows, exp_rows)
        np.testing.assert_array_equal(scores, exp_scores)
