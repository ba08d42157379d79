"""The numba engine of the inverted index: every search path equals the numpy engine bit for bit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import indexer.inverted.build as build_module
import indexer.inverted.compiled as compiled_module
from indexer.inverted import InvertedIndex

# Settings of indexer.inverted.compiled that force each path; the defaults send a 4,000-doc collection
# down the touched or dense path only.
PATHS = {
    "touched": {"PRUNE_MIN_DOCS": 10**9, "DENSE_RATIO": 0},
    "dense": {"PRUNE_MIN_DOCS": 10**9, "DENSE_RATIO": 10**9},
    "pruned-gallop": {"PRUNE_MIN_DOCS": 0, "EXHAUSTIVE_MAX_POSTINGS": 0, "TOUCH_SHARE": 1, "PROBE_COST": 0,
                      "SCAN_RATIO": 0},
    "pruned-scan": {"PRUNE_MIN_DOCS": 0, "EXHAUSTIVE_MAX_POSTINGS": 0, "TOUCH_SHARE": 1, "PROBE_COST": 0,
                    "SCAN_RATIO": 10**9},
    "pruning-gives-up-in-phase-1": {"PRUNE_MIN_DOCS": 0, "EXHAUSTIVE_MAX_POSTINGS": 0, "TOUCH_SHARE": 10**9},
    "pruning-gives-up-in-phase-2": {"PRUNE_MIN_DOCS": 0, "EXHAUSTIVE_MAX_POSTINGS": 0, "TOUCH_SHARE": 1,
                                    "PROBE_COST": 10**9},
}  # fmt: skip
# path -> (counter of CompiledSearch.path_counts, least share of the searches it must count): pruning
# gives up in phase 1 unless a few rare terms fit its budget of 4 x k docs, and in phase 2 only when
# phase 1 stopped early, which a nearly empty mask prevents.
COUNTED = {
    "touched": ("touched", 1.0),
    "dense": ("dense", 1.0),
    "pruned-gallop": ("pruned", 1.0),
    "pruned-scan": ("pruned", 1.0),
    "pruning-gives-up-in-phase-1": ("pruning_gave_up", 0.9),
    "pruning-gives-up-in-phase-2": ("pruning_gave_up", 0.5),
}


def _corpus(n_docs: int, vocab: int, seed: int) -> list[list[str]]:
    """Zipf documents, a tenth of them duplicated (so that scores tie and ties go to the lower row)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1) ** 1.1
    lens = rng.integers(3, 40, n_docs)
    flat = rng.choice(vocab, size=int(lens.sum()), p=p / p.sum())
    docs = [[f"w{t}" for t in doc] for doc in np.split(flat, np.cumsum(lens)[:-1])]
    for i in rng.choice(n_docs, n_docs // 10, replace=False).tolist():
        docs[i] = list(docs[(i * 7919) % n_docs])
    return docs


def _queries(rng: np.random.Generator, n: int, vocab: int, max_len: int = 8) -> list[list[str]]:
    """Zipf queries with repeated tokens and, now and then, a token not in the vocabulary."""
    queries = []
    for _ in range(n):
        terms = [f"w{t - 1}" for t in rng.zipf(1.2, rng.integers(1, max_len + 1)) if t <= vocab]
        if rng.random() < 0.2:
            terms.insert(int(rng.integers(0, len(terms) + 1)), "unknown-token")
        queries.append(terms)
    return queries


@pytest.fixture(scope="module")
def tiered_pair() -> tuple[InvertedIndex, InvertedIndex, int]:
    """The same small-tiered index on both engines (numba, numpy), and its vocabulary size."""
    patch = pytest.MonkeyPatch()
    patch.setattr(build_module, "TIER_MIN_DF", 50)  # small impact tiers so that pruning has tiers to skip
    patch.setattr(build_module, "_FIRST_TIER", 8)
    try:
        docs = _corpus(4000, 1500, seed=0)
        pair = (InvertedIndex.build(docs, engine="numba"), InvertedIndex.build(docs, engine="numpy"), 1500)
    finally:
        patch.undo()
    assert len(pair[0]._segment_max) > pair[0].params["vocab_size"]  # some lists have several tiers
    return pair


def _force(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    for name, value in PATHS[path].items():
        monkeypatch.setattr(compiled_module, name, value)


def _assert_same(got: tuple[np.ndarray, np.ndarray], expected: tuple[np.ndarray, np.ndarray]) -> None:
    assert got[0].dtype == np.int64 and got[1].dtype == np.float32
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])  # bit-identical float32 scores


@pytest.mark.parametrize("path", list(PATHS))
def test_every_path_equals_the_numpy_engine(
    path: str, tiered_pair: tuple[InvertedIndex, InvertedIndex, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, reference, vocab = tiered_pair
    _force(monkeypatch, path)
    rng = np.random.default_rng(1)
    masks = [None, rng.random(len(fast)) < 0.3, rng.random(len(fast)) < 0.01, np.zeros(len(fast), bool)]
    before = fast._compiled.path_counts()
    queries = _queries(rng, 60, vocab)
    for query in queries:
        for k in (1, 10, 100):
            for mask in masks:
                _assert_same(fast.search(query, k, allowed=mask), reference.search(query, k, allowed=mask))
    for got, expected in zip(
        fast.search_batch(queries, 10), reference.search_batch(queries, 10), strict=True
    ):
        _assert_same(got, expected)
    after = fast._compiled.path_counts()
    gained = {name: after[name] - before[name] for name in after}
    known = [q for q in queries if any(t != "unknown-token" for t in q)]
    counter, share = COUNTED[path]
    assert gained[counter] >= share * len(known) * 13  # 12 searches and one batch entry per query
    if path.startswith("pruned"):
        assert gained["pruning_gave_up"] == 0


def test_ties_go_to_the_lower_row(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [["a", "b"], ["c"], ["a", "b"], ["a", "b"], ["b", "a"], ["c", "c"]] * 50
    fast, reference = InvertedIndex.build(docs), InvertedIndex.build(docs, engine="numpy")
    for path in PATHS:
        _force(monkeypatch, path)
        rows, scores = fast.search(["a", "b"], 7)
        assert rows.tolist() == [0, 2, 3, 4, 6, 8, 9] and len(set(scores.tolist())) == 1
        _assert_same((rows, scores), reference.search(["a", "b"], 7))


def test_queries_with_more_terms_than_match_bits(
    tiered_pair: tuple[InvertedIndex, InvertedIndex, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, reference, vocab = tiered_pair
    rng = np.random.default_rng(2)
    for path in ("pruned-gallop", "pruned-scan"):
        _force(monkeypatch, path)
        for _ in range(5):
            query = [f"w{t}" for t in rng.choice(vocab, 45, replace=False)] + ["w0", "w3", "w0"]
            for k in (1, 10, 50):
                _assert_same(fast.search(query, k), reference.search(query, k))


def test_batch_equals_one_by_one_with_empty_and_unknown_queries(
    tiered_pair: tuple[InvertedIndex, InvertedIndex, int],
) -> None:
    fast, _, vocab = tiered_pair
    queries = [[], ["unknown-token"], *_queries(np.random.default_rng(3), 40, vocab), ["w1"]]
    for k in (1, 10):
        batch = fast.search_batch(queries, k)
        assert len(batch) == len(queries)
        for query, got in zip(queries, batch, strict=True):
            _assert_same(got, fast.search(query, k))
    assert [len(rows) for rows, _ in fast.search_batch([[], ["unknown-token"]], 5)] == [0, 0]


def test_k_beyond_the_collection_and_numpy_integer_k() -> None:
    docs = _corpus(300, 100, seed=4)
    fast, reference = InvertedIndex.build(docs), InvertedIndex.build(docs, engine="numpy")
    for k in (10**6, np.int64(7)):
        _assert_same(fast.search(["w1", "w2"], k), reference.search(["w1", "w2"], k))
        _assert_same(fast.search_batch([["w1", "w2"]], k)[0], reference.search(["w1", "w2"], k))


def test_memory_mapped_index_and_read_only_mask(tmp_path: Path) -> None:
    docs = _corpus(600, 200, seed=5)
    InvertedIndex.build(docs).save(tmp_path / "bm25")
    fast = InvertedIndex.load(tmp_path / "bm25")
    reference = InvertedIndex.load(tmp_path / "bm25", engine="numpy")
    assert fast.engine == "numba" and reference.engine == "numpy"
    mask = np.random.default_rng(6).random(len(docs)) < 0.5
    mask.flags.writeable = False
    for query in (["w0"], ["w3", "w1", "w3"], ["w10", "w40", "w2"]):
        _assert_same(fast.search(query, 10, allowed=mask), reference.search(query, 10, allowed=mask))


def test_unknown_engine_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown engine 'gpu'.*'auto', 'numba', 'numpy'"):
        InvertedIndex.build([["a"]], engine="gpu")


def test_threads_each_use_their_own_scratch(
    tiered_pair: tuple[InvertedIndex, InvertedIndex, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, reference, vocab = tiered_pair
    _force(monkeypatch, "pruned-gallop")
    queries = _queries(np.random.default_rng(7), 200, vocab)
    expected = [reference.search(q, 10) for q in queries]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda q: fast.search(q, 10), queries))
    for one, other in zip(got, expected, strict=True):
        _assert_same(one, other)
