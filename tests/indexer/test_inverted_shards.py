"""Shards of one corpus built with the corpus's statistics score their documents exactly as an index of the
whole corpus does, so the merged top k of the shards is the whole index's top k (issue: scale-out)."""

from __future__ import annotations

import json
from itertools import islice, pairwise
from pathlib import Path

import numpy as np
import pytest

from indexer.analysis import make_analyzer
from indexer.inverted import InvertedIndex
from indexer.inverted.build import CorpusStats
from tests.conftest import SCIFACT

SHARDS = 4
K = 100


@pytest.fixture(scope="module")
def corpus() -> tuple[list[list[str]], list[list[str]]]:
    """1,200 SciFact abstracts and 60 queries, analysed as the default build analyses them."""
    analyze = make_analyzer("english")
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        docs = [json.loads(line) for line in islice(lines, 1200)]
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as lines:
        queries = [json.loads(line)["text"] for line in islice(lines, 60)]
    return [analyze(f"{d['title']}\n{d['text']}") for d in docs], [analyze(q) for q in queries]


def _shards(docs: list[list[str]]) -> list[tuple[int, list[list[str]]]]:
    """(first row, documents) of each shard: uneven contiguous slices."""
    cuts = [0, 100, 520, 900, len(docs)]
    return [(lo, docs[lo:hi]) for lo, hi in pairwise(cuts)]


def test_partial_statistics_add_up_to_the_whole_corpus(corpus: tuple[list, list]) -> None:
    docs, _ = corpus
    merged = CorpusStats.merge(CorpusStats.of(part) for _, part in _shards(docs))
    assert merged == CorpusStats.of(docs)
    assert merged.avg_doc_len == float(np.mean([len(d) for d in docs]))


def test_shards_with_corpus_statistics_give_the_whole_index_top_k(
    corpus: tuple[list, list], tmp_path: Path
) -> None:
    docs, queries = corpus
    whole = InvertedIndex.build(docs)
    stats = CorpusStats.merge(CorpusStats.of(part) for _, part in _shards(docs))
    shards = []
    for number, (first, part) in enumerate(_shards(docs)):
        InvertedIndex.build(part, stats=stats).save(tmp_path / str(number))  # and back: stats survive
        shards.append((first, InvertedIndex.load(tmp_path / str(number))))
    for query in queries:
        rows, scores = whole.search(query, K)
        found = [(first + shard.search(query, K)[0], shard.search(query, K)[1]) for first, shard in shards]
        all_rows = np.concatenate([r for r, _ in found])
        all_scores = np.concatenate([s for _, s in found])
        order = np.lexsort((all_rows, -all_scores))[:K]
        np.testing.assert_array_equal(all_rows[order], rows)
        np.testing.assert_allclose(all_scores[order], scores, rtol=0, atol=1e-6)
    for term in {"cell", "vitamin", "protein", "dna"}:
        holders = [shard for _, shard in shards if shard.document_frequency(term)]
        assert holders and {s.document_frequency(term) for s in holders} == {whole.document_frequency(term)}
        assert {s.idf(term) for s in holders} == {whole.idf(term)}
    assert shards[0][1].params["corpus_docs"] == len(docs) and len(shards[0][1]) == 100


def test_statistics_of_other_documents_are_refused(corpus: tuple[list, list]) -> None:
    docs, _ = corpus
    with pytest.raises(ValueError, match="corpus statistics hold no document with"):
        InvertedIndex.build(docs[:10], stats=CorpusStats.of(docs[10:20]))
