"""Ranking metrics: hand-computed examples, then parity with trec_eval (pytrec_eval) on a real SciFact run."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from ranker.metrics import (
    Run,
    ap_11pt,
    ap_allpt,
    average_precision,
    evaluate_run,
    interpolated_precision,
    ndcg_at_k,
    parse_metric,
    precision_at_k,
    rank_scored,
    recall_at_k,
    reciprocal_rank,
)

# Four relevant documents (d3 graded 2); d9 is never retrieved. Relevant flags of RANKED: 1 0 1 0 1 0.
QRELS = {"d1": 1, "d3": 2, "d5": 1, "d9": 1, "d2": 0}
RANKED = ["d1", "d2", "d3", "d4", "d5", "d6"]


def test_recall_at_k() -> None:
    assert recall_at_k(RANKED, QRELS, 1) == pytest.approx(1 / 4)  # d1 of 4 relevant
    assert recall_at_k(RANKED, QRELS, 3) == pytest.approx(2 / 4)  # d1, d3
    assert recall_at_k(RANKED, QRELS, 10) == pytest.approx(3 / 4)  # d1, d3, d5; d9 never retrieved
    assert recall_at_k(RANKED, {"x": 0}, 10) == 0.0  # no relevant document: 0, not a division by zero


def test_precision_at_k() -> None:
    assert precision_at_k(RANKED, QRELS, 3) == pytest.approx(2 / 3)  # 2 relevant in the top 3
    assert precision_at_k(RANKED, QRELS, 10) == pytest.approx(3 / 10)  # trec_eval divides by k, not by 6
    assert precision_at_k(RANKED, QRELS) == pytest.approx(3 / 6)  # no k: the list's length


def test_average_precision() -> None:
    # Precision at the relevant ranks 1, 3, 5: 1/1, 2/3, 3/5; divided by all 4 relevant documents.
    assert average_precision(RANKED, QRELS) == pytest.approx((1 + 2 / 3 + 3 / 5) / 4)  # 0.566667
    # Cut at 2 (map_cut_2): only rank 1 counts, the denominator stays 4.
    assert average_precision(RANKED, QRELS, 2) == pytest.approx(1 / 4)


def test_ndcg_at_k() -> None:
    # DCG@3 = 1/log2(2) + 0 + 2/log2(4) = 1 + 1 = 2.
    # Ideal grades 2,1,1,1 -> IDCG@3 = 2/log2(2) + 1/log2(3) + 1/log2(4) = 2 + 0.630930 + 0.5 = 3.130930.
    assert ndcg_at_k(RANKED, QRELS, 3) == pytest.approx(2 / 3.130930, abs=1e-6)  # 0.638788
    # Whole list: DCG = 2 + 1/log2(6) = 2.386853; IDCG = 3.130930 + 1/log2(5) = 3.561606.
    assert ndcg_at_k(RANKED, QRELS) == pytest.approx(2.386853 / 3.561606, abs=1e-6)  # 0.670162
    assert ndcg_at_k(["d3", "d1", "d5", "d9"], QRELS, 4) == pytest.approx(1.0)  # the ideal ranking
    # A negative grade is a judged non-relevant document: gain 0, as in trec_eval.
    assert ndcg_at_k(["n", "a"], {"n": -1, "a": 1}, 2) == pytest.approx(1 / np.log2(3))


def test_reciprocal_rank() -> None:
    assert reciprocal_rank(RANKED, QRELS) == 1.0
    assert reciprocal_rank(["d2", "d4", "d3"], QRELS) == pytest.approx(1 / 3)  # first relevant at rank 3
    assert reciprocal_rank(["d2", "d4", "d3"], QRELS, 2) == 0.0  # ... which falls outside the top 2


def test_interpolated_precision_and_voc_ap() -> None:
    # Precision by rank 1, 1/2, 2/3, 2/4, 3/5, 3/6; recall .25 .25 .5 .5 .75 .75.
    # Level 0-0.2: best precision anywhere = 1; 0.3-0.5: best from rank 3 on = 2/3;
    # 0.6-0.7: best from rank 5 on = 3/5; 0.8-1.0: never reached = 0.
    expected = [1, 1, 1, 2 / 3, 2 / 3, 2 / 3, 3 / 5, 3 / 5, 0, 0, 0]
    np.testing.assert_allclose(interpolated_precision(RANKED, QRELS), expected)
    assert ap_11pt(RANKED, QRELS) == pytest.approx((3 + 3 * 2 / 3 + 2 * 3 / 5) / 11)  # 6.2 / 11 = 0.563636
    # Precision at the hits is already decreasing, so all-point AP equals plain AP here.
    assert ap_allpt(RANKED, QRELS) == pytest.approx(average_precision(RANKED, QRELS))


def test_interpolation_raises_early_precision() -> None:
    qrels = {"a": 1, "b": 1}
    ranked = ["x", "a", "b"]  # precision at the hits: 1/2 (rank 2), 2/3 (rank 3)
    assert average_precision(ranked, qrels) == pytest.approx((1 / 2 + 2 / 3) / 2)  # 0.583333
    # Interpolated precision at rank 2 is max(1/2, 2/3) = 2/3; each hit adds recall 1/2: area = 2/3.
    assert ap_allpt(ranked, qrels) == pytest.approx(2 / 3)
    # Every recall level 0..1 is reached by rank 3, whose precision 2/3 is the best from there on.
    assert ap_11pt(ranked, qrels) == pytest.approx(2 / 3)


def test_duplicates_and_bad_cutoffs_are_refused() -> None:
    with pytest.raises(ValueError, match=r"more than once.*'d1'"):
        recall_at_k(["d1", "d2", "d1"], QRELS, 3)
    with pytest.raises(ValueError, match="positive integer"):
        precision_at_k(RANKED, QRELS, 0)
    with pytest.raises(ValueError, match=r"unknown metric 'ndgc@10'.*'ndcg'"):
        parse_metric("ndgc@10")
    with pytest.raises(ValueError, match="bad cutoff"):
        parse_metric("ndcg@ten")
    assert parse_metric("map") == ("map", None)
    assert parse_metric("recall@100") == ("recall", 100)


def test_rank_scored_breaks_ties_like_trec_eval() -> None:
    # Score descending, then docid descending (string order): "b" > "a" among the two 2.0 scores.
    assert rank_scored({"a": 2.0, "c": 1.0, "b": 2.0, "d": 3.0}) == ["d", "b", "a", "c"]
    with pytest.raises(ValueError, match="non-finite"):
        rank_scored({"a": float("nan")})


def test_evaluate_run_conventions() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    run: Run = {
        "q1": ["a", "z"],  # a list is taken in order: relevant at rank 1
        "q2": {"b": 1.0, "y": 1.0},  # tie at 1.0: docid descending puts "y" first, "b" second
        "q9": ["c"],  # no judgments: ignored
    }  # q3 is judged but absent from the run: 0 on every metric (trec_eval -c)
    per_query, mean = evaluate_run(run, qrels, ["mrr@10", "p@1"])
    assert per_query == {
        "q1": {"mrr@10": 1.0, "p@1": 1.0},
        "q2": {"mrr@10": 0.5, "p@1": 0.0},
        "q3": {"mrr@10": 0.0, "p@1": 0.0},
    }
    assert mean == pytest.approx({"mrr@10": (1 + 0.5 + 0) / 3, "p@1": 1 / 3})
    with pytest.raises(ValueError, match="no metrics"):
        evaluate_run(run, qrels, [])


# Parity with trec_eval through pytrec_eval on a real BM25 run over a slice of SciFact.

SCIFACT = Path(__file__).resolve().parents[2] / "data" / "scifact"
N_DOCS = 2000
OUR_TO_TREC = {
    "recall@10": "recall_10",
    "recall@100": "recall_100",
    "map": "map",
    "map@100": "map_cut_100",
    "ndcg@10": "ndcg_cut_10",
    "ndcg@100": "ndcg_cut_100",
    "p@10": "P_10",
    "ap_11pt": "11pt_avg",
}
TREC_MEASURES = {
    "recall.10,100",
    "map",
    "map_cut.100",
    "ndcg_cut.10,100",
    "P.10",
    "11pt_avg",
    "iprec_at_recall",
}


@pytest.fixture(scope="module")
def scifact_runs() -> tuple[dict[str, dict[str, int]], dict[str, dict[str, dict[str, float]]]]:
    """Test qrels restricted to queries with a relevant doc in the first 2,000 docs, and two BM25 runs."""
    bm25s = pytest.importorskip("bm25s")
    stemmer = pytest.importorskip("Stemmer").Stemmer("english")
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        docs = [json.loads(line) for line in islice(lines, N_DOCS)]
    doc_ids = [str(doc["_id"]) for doc in docs]
    qrels: dict[str, dict[str, int]] = {}
    for line in (SCIFACT / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, doc, score = line.split("\t")
        qrels.setdefault(qid, {})[doc] = int(score)
    in_slice = set(doc_ids)
    qrels = {qid: judged for qid, judged in qrels.items() if in_slice & set(judged)}
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as lines:
        texts = {row["_id"]: row["text"] for row in map(json.loads, lines) if row["_id"] in qrels}
    qids = sorted(qrels)
    retriever = bm25s.BM25()
    corpus_tokens = bm25s.tokenize(
        [f"{d['title']} {d['text']}" for d in docs], stopwords="en", stemmer=stemmer, show_progress=False
    )
    retriever.index(corpus_tokens, show_progress=False)
    query_tokens = bm25s.tokenize(
        [texts[q] for q in qids], stopwords="en", stemmer=stemmer, show_progress=False
    )
    rows, scores = retriever.retrieve(query_tokens, k=100, show_progress=False)
    bm25 = {
        qid: {doc_ids[int(row)]: float(score) for row, score in zip(rows[i], scores[i], strict=True)}
        for i, qid in enumerate(qids)
    }
    # Rounded scores create many ties, which exercises the score-then-docid ordering.
    coarse = {qid: {doc: round(score, 0) for doc, score in docs.items()} for qid, docs in bm25.items()}
    return qrels, {"bm25": bm25, "bm25_coarse": coarse}


@pytest.mark.parametrize("run_name", ["bm25", "bm25_coarse"])
def test_parity_with_trec_eval(scifact_runs, run_name: str) -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels, runs = scifact_runs
    run = runs[run_name]
    assert len(qrels) == 145  # test queries with a relevant doc among the first 2,000 SciFact docs
    if run_name == "bm25_coarse":
        ties = sum(len(docs) - len(set(docs.values())) for docs in run.values())
        assert ties > 1000  # the coarse run really is full of ties
    trec = pytrec_eval.RelevanceEvaluator(qrels, TREC_MEASURES).evaluate(run)
    top10 = {qid: {doc: docs[doc] for doc in rank_scored(docs)[:10]} for qid, docs in run.items()}
    trec_rr10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    per_query, mean = evaluate_run(run, qrels, [*OUR_TO_TREC, "mrr@10"])
    assert set(per_query) == set(trec) == set(qrels)
    for qid, ours in per_query.items():
        for metric, trec_name in OUR_TO_TREC.items():
            assert ours[metric] == pytest.approx(trec[qid][trec_name], abs=1e-6), (qid, metric)
        assert ours["mrr@10"] == pytest.approx(trec_rr10[qid]["recip_rank"], abs=1e-6), qid
        levels = [trec[qid][f"iprec_at_recall_{level:.2f}"] for level in np.linspace(0, 1, 11)]
        np.testing.assert_allclose(
            interpolated_precision(rank_scored(run[qid]), qrels[qid]), levels, atol=1e-6
        )
    for metric, trec_name in OUR_TO_TREC.items():
        trec_mean = np.mean([values[trec_name] for values in trec.values()])
        assert mean[metric] == pytest.approx(trec_mean, abs=1e-6), metric
    assert mean["mrr@10"] == pytest.approx(np.mean([v["recip_rank"] for v in trec_rr10.values()]), abs=1e-6)
    if run_name == "bm25":
        assert mean["ndcg@10"] > 0.7  # measured 0.7616 on this slice
