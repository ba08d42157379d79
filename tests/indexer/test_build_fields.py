"""Per-field analyzers and boosts: exact boosted multi-field BM25, honoured at query time by the service."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from indexer.analysis import make_analyzer
from indexer.build import build_collection
from indexer.config import BuildConfig, FieldConfig, apply_column_map
from indexer.encoders.torch import Encoder
from indexer.fields import MAX_QUERY_TERMS, Bm25Field, FieldedBm25, prune_terms
from indexer.inverted import InvertedIndex
from retrieval.branches.bm25 import Bm25Source
from retrieval.branches.dense import DenseSource
from retrieval.collection import Collection
from retrieval.pipeline import SearchPipeline
from retrieval.service import CollectionService

MIXED = [
    {"id": "d1", "title": "北京大学图书馆", "body": "图书馆藏书丰富，对全校师生开放"},
    {"id": "d2", "title": "Running shoes 跑鞋", "body": "轻便的跑鞋，适合马拉松 training"},
    {"id": "d3", "title": "咖啡机", "body": "意式咖啡机，带奶泡功能 espresso"},
    {"id": "d4", "title": "上海博物馆", "body": "博物馆展出青铜器和陶瓷 bronze ceramics"},
]


def _random_fields(seed: int, n_docs: int = 300) -> FieldedBm25:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(40)]
    fields = []
    for name, boost, length in (("title", 2.5, 4), ("body", 1.0, 30), ("tags", 0.5, 2)):
        docs = [
            [rng.choice(vocab[: 10 + i % 30]) for _ in range(rng.randint(0, length))] for i in range(n_docs)
        ]
        fields.append(Bm25Field(name, "english", boost, (), InvertedIndex.build(docs)))
    return FieldedBm25(fields)


def _brute_force(index: FieldedBm25, tokens: list[str], k: int, allowed: np.ndarray | None) -> list[int]:
    scores = index.score_rows(tokens, np.arange(len(index)))
    if allowed is not None:
        scores[~allowed] = 0
    order = np.lexsort((np.arange(len(scores)), -scores))
    return [int(r) for r in order[:k] if scores[r] > 0]


@pytest.mark.parametrize("seed", [0, 1])
def test_fielded_search_is_the_exact_boosted_sum(seed: int) -> None:
    index = _random_fields(seed)
    rng = np.random.default_rng(seed)
    allowed = rng.random(len(index)) < 0.5
    for _ in range(60):
        tokens = [f"w{i}" for i in rng.integers(0, 45, size=rng.integers(1, 5))]
        k = int(rng.integers(1, 25))
        mask = allowed if rng.random() < 0.3 else None
        rows, scores = index.search(tokens, k, allowed=mask)
        assert rows.tolist() == _brute_force(index, tokens, k, mask)
        np.testing.assert_array_equal(scores, index.score_rows(tokens, rows))


def test_token_lists_need_one_shared_analyzer(tmp_path: Path) -> None:
    word = InvertedIndex.build([["北京"], ["上海"]])
    char = InvertedIndex.build([["北", "京"], ["上", "海"]])
    index = FieldedBm25(
        [Bm25Field("w", "chinese", 1.0, (), word), Bm25Field("c", "cjk_unigram", 1.0, (), char)]
    )
    with pytest.raises(ValueError, match="pass \\{analyzer: tokens\\}"):
        index.search(["北京"], 1)
    assert index.analyze("北京")["cjk_unigram"] == ["北", "京"]
    rows, _ = index.search(index.analyze("北京"), 2)
    assert rows.tolist() == [0]
    index.save(tmp_path / "bm25")
    again = FieldedBm25.load(tmp_path / "bm25")
    assert [(f.name, f.analyzer) for f in again.fields] == [("w", "chinese"), ("c", "cjk_unigram")]
    word.save(tmp_path / "bare")  # a version built before fields existed loads as one field
    assert [f.name for f in FieldedBm25.load(tmp_path / "bare", default_analyzer="chinese").fields] == [
        "content"
    ]


def test_unknown_field_analyzer_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown analyzer 'klingon'.*cjk_unigram"):
        make_analyzer("klingon")


def test_prune_terms_keeps_the_top_terms_by_tf_times_idf() -> None:
    idf = {"a": 1.0, "b": 2.0, "c": 5.0, "d": 2.0, "u": 0.0}.__getitem__
    tokens = ["a", "b", "c", "a", "d", "b", "a"]  # tf * idf: a 3 * 1 = 3, b 2 * 2 = 4, c 5, d 2
    assert prune_terms(tokens, idf, 2) == ["b", "c", "b"]  # c and b, every occurrence, in query order
    assert prune_terms(tokens, idf, 3) == ["a", "b", "c", "a", "b", "a"]
    assert prune_terms(tokens, idf, 4) is tokens  # no more distinct terms than the limit: untouched
    # Ties go to the first occurrence; a term no document holds (idf 0) is the first to go.
    assert prune_terms(["u", "d", "b", "d"], idf, 2) == ["d", "b", "d"]  # d 4 > b 2 > u 0
    assert prune_terms(["u", "d", "b"], idf, 1) == ["d"]  # d and b tie at 2: d comes first
    with pytest.raises(ValueError, match="limit must be a positive number of terms, got 0"):
        prune_terms(tokens, idf, 0)


def _cat_fields(max_query_terms: int) -> FieldedBm25:
    """Two english fields over 4 rows: title df cat 1, dog 2; body df mat 1, cat 3, dog 3."""
    title = InvertedIndex.build([["cat"], ["dog"], ["dog"], []])
    body = InvertedIndex.build([["dog", "cat"], ["dog", "cat"], ["dog", "cat"], ["mat"]])
    fields = [Bm25Field("title", "english", 2.0, (), title), Bm25Field("body", "english", 1.0, (), body)]
    return FieldedBm25(fields, max_query_terms=max_query_terms)


def test_query_terms_prune_by_the_highest_idf_over_the_analyzers_fields() -> None:
    # idf = ln(1 + (4 - df + 0.5) / (df + 0.5)), the highest over the two fields:
    # cat and mat (df 1 somewhere) ln(10/3) = 1.204, dog (df 2 in titles) ln 2 = 0.693, sleep unknown: 0.
    # "sleep mat dog dog dog cat": dog 3 * 0.693 = 2.079, mat 1.204, cat 1.204 (a tie: mat comes first).
    text = "sleep mat dog dog dog cat"
    assert _cat_fields(2).query_terms(text) == {"english": ["mat", "dog", "dog", "dog"]}
    assert _cat_fields(3).query_terms(text) == {"english": ["mat", "dog", "dog", "dog", "cat"]}
    assert _cat_fields(4).query_terms(text) == _cat_fields(4).analyze(text)
    index = _cat_fields(2)
    expected = index.score_rows(["mat", "dog", "dog", "dog"], np.arange(4))
    np.testing.assert_array_equal(index.score_rows(index.query_terms(text), np.arange(4)), expected)
    with pytest.raises(ValueError, match="max_query_terms must be a positive number of terms, got 0"):
        _cat_fields(0)


def test_query_terms_prune_each_analyzer_by_its_own_fields() -> None:
    words = InvertedIndex.build([["北京"], ["上海"]])
    chars = InvertedIndex.build([["北", "京"], ["上", "海"]])
    index = FieldedBm25(
        [Bm25Field("w", "chinese", 1.0, (), words), Bm25Field("c", "cjk_unigram", 1.0, (), chars)],
        max_query_terms=1,
    )
    # Every term has df 1: tf decides, then the first occurrence (北 before 京).
    assert index.query_terms("上海 北京 北京") == {"chinese": ["北京", "北京"], "cjk_unigram": ["北", "北"]}


@pytest.mark.parametrize("seed", [0, 1])
def test_queries_up_to_the_limit_keep_every_term(seed: int) -> None:
    index = _random_fields(seed)
    assert index.max_query_terms == MAX_QUERY_TERMS == 64
    rng = np.random.default_rng(seed)
    for _ in range(30):
        text = " ".join(f"w{i}" for i in rng.integers(0, 45, size=rng.integers(1, 120)))
        assert index.query_terms(text) == index.analyze(text)  # 45 distinct words at most: never pruned
    # 75 distinct terms, 40 of them in the vocabulary (w0-w39): 64 are kept, every known one among them.
    long = " ".join(f"w{i}" for i in range(45)) + " " + " ".join(f"x{i}" for i in range(30))
    kept = set(index.query_terms(long)["english"])
    assert len(kept) == 64 and kept >= {f"w{i}" for i in range(40)}


@pytest.fixture(scope="module")
def mixed_root(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    folder = tmp_path_factory.mktemp("mixed")
    corpus = folder / "items.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in MIXED), encoding="utf-8")
    config = BuildConfig(
        analyzer="chinese",
        fields=[
            FieldConfig(name="title", sources=["title"], boost=2.0),
            FieldConfig(name="body", sources=["body"]),
            FieldConfig(name="chars", analyzer="cjk_unigram", boost=0.5),
        ],
    )
    config = apply_column_map(config, ["text=title,body"])
    build_collection(corpus, folder / "idx", config, encoder=encoder, progress=False)
    return folder / "idx"


def test_field_analyzers_and_boosts_are_stored_and_used_at_query_time(
    mixed_root: Path, encoder: Encoder
) -> None:
    collection = Collection.load(mixed_root, encoder=encoder)
    try:
        stored = collection.manifest["params"]["fields"]
        assert [(f["name"], f["analyzer"], f["boost"]) for f in stored] == [
            ("title", "chinese", 2.0),
            ("body", "chinese", 1.0),
            ("chars", "cjk_unigram", 0.5),
        ]
        terms = collection.query_terms("图书馆 running")
        assert set(terms) == {"chinese", "cjk_unigram"}
        assert "run" in terms["chinese"] and "图" in terms["cjk_unigram"]
        # A single character inside a jieba word only matches the character field, at half weight.
        rows, scores = collection.inverted.search(collection.query_terms("京"), 5)
        assert collection.external_ids_of(rows) == ["d1"]
        chars = collection.inverted.fields[2].index
        assert scores[0] == pytest.approx(0.5 * chars.search(["京"], 1)[1][0])
        # English words inside Chinese text are stemmed as in the documents.
        rows, _ = collection.inverted.search(collection.query_terms("run"), 5)
        assert collection.external_ids_of(rows) == ["d2"]
        # The title field's boost: a title match outranks the same word in another document's body.
        rows, _ = collection.inverted.search(collection.query_terms("咖啡机"), 5)
        assert collection.external_ids_of(rows)[0] == "d3"
    finally:
        collection.close()


def test_the_service_answers_through_the_fielded_index(mixed_root: Path, encoder: Encoder) -> None:
    collection = Collection.load(mixed_root, encoder=encoder)
    service = CollectionService(collection, SearchPipeline([Bm25Source(collection), DenseSource(collection)]))
    try:
        answer = service.search("博物馆 青铜器", k=2)
        assert answer.hits[0].id == "d4"
        assert answer.hits[0].title == "上海博物馆"
        assert answer.degraded == []
        assert "bm25" in answer.hits[0].branches
    finally:
        service.close()
