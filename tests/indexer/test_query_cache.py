"""Query caches: the LRU, query embeddings in front of an encoder, and analysed query terms."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from indexer.analysis import make_analyzer
from indexer.encoders.onnx_int8 import OnnxEncoder
from indexer.encoders.query_cache import LruCache, QueryCachedEncoder
from indexer.fields import Bm25Field, FieldedBm25
from indexer.inverted import InvertedIndex
from tests.indexer.test_encoder import CountingEncoder, scifact_queries


def test_lru_refreshes_on_lookup_and_evicts_the_least_recent_at_its_bound() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert len(cache) == 2 and "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert cache.get("b") is None
    assert (cache.hits, cache.misses) == (3, 1)
    cache.clear()
    assert len(cache) == 0 and cache.hits == 0
    with pytest.raises(ValueError, match="maxsize must be a positive number of entries, got 0"):
        LruCache(0)


def test_cached_queries_are_exactly_the_encoders_vectors_and_a_hit_skips_it() -> None:
    inner = CountingEncoder()
    cached = QueryCachedEncoder(inner, LruCache(16))
    texts = ["vitamin d", "bone density", "vitamin d "]
    first = cached.encode_queries(texts)
    np.testing.assert_array_equal(first, inner.encode_queries(texts))
    inner.calls.clear()
    again = cached.encode_queries(["bone density", "new text", "vitamin d"])
    assert inner.calls == [["new text"]]  # only the text it had not seen
    np.testing.assert_array_equal(again[[0, 2]], first[[1, 0]])
    assert again.dtype == np.float32 and again.flags.writeable
    again[:] = 0  # the caller's copy: the cache keeps its own
    np.testing.assert_array_equal(cached.encode_queries(["vitamin d"])[0], first[0])
    assert cached.encode_queries([]).shape == (0, inner.dim)
    assert (cached.name, cached.kind, cached.dim, cached.fingerprint) == ("fake", "fake", inner.dim, "f1")


def test_query_cache_evicts_at_its_bound() -> None:
    inner = CountingEncoder()
    cached = QueryCachedEncoder(inner, LruCache(3))
    for text in ["a", "b", "c", "d"]:
        cached.encode_queries([text])
    assert len(cached.query_cache) == 3
    inner.calls.clear()
    cached.encode_queries(["b"])
    cached.encode_queries(["a"])  # the oldest was dropped when "d" came in
    assert inner.calls == [["a"]]


def test_encoders_of_other_kinds_or_weights_do_not_share_entries() -> None:
    shared: LruCache = LruCache(16)
    a, b, refreshed = CountingEncoder("kind-a"), CountingEncoder("kind-b"), CountingEncoder("kind-a", "f2")
    for inner in (a, b, refreshed):
        vector = QueryCachedEncoder(inner, shared).encode_queries(["same text"])
        np.testing.assert_array_equal(vector, inner.encode_queries(["same text"]))
    assert len(shared) == 3
    again = CountingEncoder("kind-a")
    QueryCachedEncoder(again, shared).encode_queries(["same text"])
    assert again.calls == []  # same kind and weights: another instance reads the entry


def test_warm_up_reaches_the_model_even_when_the_text_is_cached() -> None:
    inner = CountingEncoder()
    cached = QueryCachedEncoder(inner, LruCache(4))
    cached.encode_queries(["warm-up"])
    cached.warm_up()
    assert inner.calls == [["warm-up"], ["warm-up"]]


def test_query_cache_is_safe_to_share_between_threads() -> None:
    inner = CountingEncoder()
    cached = QueryCachedEncoder(inner, LruCache(50))
    texts = [f"query {i % 80}" for i in range(800)]
    with ThreadPoolExecutor(8) as pool:
        vectors = list(pool.map(lambda t: cached.encode_queries([t])[0], texts))
    np.testing.assert_array_equal(np.stack(vectors), inner.encode_queries(texts))
    assert len(cached.query_cache) == 50


def test_cached_onnx_queries_equal_the_encoders_own(onnx_encoder: OnnxEncoder) -> None:
    queries = scifact_queries(20)
    cached = QueryCachedEncoder(onnx_encoder, LruCache(64))
    first = np.vstack([cached.encode_queries([q]) for q in queries])
    hit = np.vstack([cached.encode_queries([q]) for q in queries])
    direct = np.vstack([onnx_encoder.encode_queries([q]) for q in queries])
    np.testing.assert_array_equal(first, direct)
    np.testing.assert_array_equal(hit, direct)
    assert cached.query_cache.hits == len(queries)


class CountingAnalyzers(FieldedBm25):
    """Counts the texts it analyses."""

    analysed: list[str]

    def analyze(self, text: str) -> dict[str, list[str]]:
        self.analysed.append(text)
        return super().analyze(text)


def _counting_index() -> CountingAnalyzers:
    english = make_analyzer("english")
    docs = ["the cat sat on the mat", "dogs chase cats", "a dog and a mat"]
    inverted = InvertedIndex.build([english(doc) for doc in docs])
    index = CountingAnalyzers([Bm25Field("text", "english", 1.0, (), inverted)])
    index.analysed = []
    return index


def test_query_terms_are_cached_per_text_and_pruning_limit() -> None:
    index = _counting_index()
    text = "dog dog dog cat mat"
    first = index.query_terms(text)
    assert first == {"english": ["dog", "dog", "dog", "cat", "mat"]}
    first["english"].clear()  # the caller's lists: the cached entry stays whole
    assert index.query_terms(text) == {"english": ["dog", "dog", "dog", "cat", "mat"]}
    assert index.analysed == [text]  # the second call did not analyse
    index.max_query_terms = 1
    assert index.query_terms(text) == {"english": ["dog", "dog", "dog"]}  # a new limit: another entry
    assert index.analysed == [text, text]
    index.query_cache.maxsize = 2
    for other in ("cats", "mats", "dogs"):
        index.query_terms(other)
    assert len(index.query_cache) == 2


def test_query_terms_cache_answers_like_analysis_and_pruning(scifact_slice_root) -> None:
    from retrieval.collection import Collection

    collection = Collection.load(scifact_slice_root, query_encoder="build")
    inverted = collection.inverted
    texts = scifact_queries(30)
    cold = [inverted.query_terms(t) for t in texts]
    warm = [inverted.query_terms(t) for t in texts]
    uncached = [
        {name: inverted._prune(name, tokens) for name, tokens in inverted.analyze(t).items()} for t in texts
    ]
    assert cold == warm == uncached
    collection.close()
