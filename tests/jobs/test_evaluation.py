"""Evaluation inputs (queries, qrels, TREC runs), run evaluation and the paired randomisation test."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from jobs.evaluation import (
    check_qrels_match_queries,
    check_run_docids,
    evaluate_run_files,
    evaluate_runs,
    format_table,
    most_changed_queries,
    paired_randomization_test,
    pr_curve,
    read_qrels,
    read_queries,
    read_run,
    recall_curve,
    unique_contribution,
    write_run,
)
from ranker.metrics import Run

QRELS = {"q1": {"a": 1, "b": 1}, "q2": {"c": 1}}


def test_read_queries_and_qrels(tmp_path: Path) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": "q1", "text": "first"}\n\n{"_id": 2, "text": "second"}\n', encoding="utf-8")
    assert read_queries(queries) == {"q1": "first", "2": "second"}
    beir = tmp_path / "test.tsv"
    beir.write_text("query-id\tcorpus-id\tscore\nq1\ta\t1\nq1\tb\t2\nq2\tc\t0\n", encoding="utf-8")
    assert read_qrels(beir) == {"q1": {"a": 1, "b": 2}, "q2": {"c": 0}}
    trec = tmp_path / "qrels.trec"
    trec.write_text("q1 0 a 1\nq1 0 b 2\nq2 0 c 0\n", encoding="utf-8")
    assert read_qrels(trec) == read_qrels(beir)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "queries.jsonl",
            '{"_id": "q1", "text": "ok"}\n{"_id": "q2"\n',
            r"queries\.jsonl:2: expected a JSON",
        ),
        ("qrels.tsv", "query-id\tcorpus-id\tscore\nq1\ta\n", r"qrels\.tsv:2: expected 3 columns"),
        ("qrels.tsv", "q1\ta\t1\nq1\tb\tyes\n", r"qrels\.tsv:2: relevance must be an integer, got 'yes'"),
        ("qrels.tsv", "q1\ta\t1\nq1\ta\t1\n", r"qrels\.tsv:2: query 'q1' judges document 'a' a second time"),
        ("run.txt", "q1 Q0 a 1 2.0 t\nq1 Q0 b 2 1.0\n", r"run\.txt:2: expected 6 columns"),
        ("run.txt", "q1 Q0 a 1 2.0 t\n\nq1 Q0 b x 1.0 t\n", r"run\.txt:3: rank must be an integer"),
        ("run.txt", "q1 Q0 a 1 nan t\n", r"run\.txt:1: score must be finite"),
        ("run.txt", "q1 Q0 a 1 2.0 t\nq1 Q0 a 2 1.0 t\n", r"run\.txt:2: query 'q1' lists document 'a'"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    reader = {"queries.jsonl": read_queries, "qrels.tsv": read_qrels, "run.txt": read_run}[name]
    with pytest.raises(ValueError, match=message):
        reader(path)


def test_run_file_round_trip_keeps_order_and_scores(tmp_path: Path) -> None:
    scored = {"q2": {"c": 0.5, "y": 0.5, "x": 1.0 / 3.0}, "q1": {"a": 3.25, "b": 7.0}}
    path = write_run(tmp_path / "runs" / "bm25.trec", scored, tag="bm25")
    lines = path.read_text(encoding="utf-8").splitlines()
    # Queries sorted; within q2 the 0.5 tie goes to the larger docid first ("y" > "c"), as in trec_eval.
    assert lines[:3] == ["q1 Q0 b 1 7.0 bm25", "q1 Q0 a 2 3.25 bm25", "q2 Q0 y 1 0.5 bm25"]
    assert read_run(path) == scored  # scores are written exactly (repr), so nothing is lost
    ranked = {"q1": ["b", "a", "z"]}
    write_run(tmp_path / "list.trec", ranked, k=2)
    assert read_run(tmp_path / "list.trec") == {"q1": {"b": 3.0, "a": 2.0}}  # scores 3, 2, 1; cut at k=2
    with pytest.raises(ValueError, match="whitespace"):
        write_run(tmp_path / "bad.trec", ranked, tag="two words")


def test_qrels_that_match_no_query_are_refused() -> None:
    check_qrels_match_queries(
        {"1": {}, "3": {}}, {"3": "text"}, "qrels/test.tsv", "queries.jsonl"
    )  # one match
    with pytest.raises(ValueError, match=r"qrels/test\.tsv.*queries\.jsonl.*\['1', '3'\].*\['q1', 'q2'\]"):
        check_qrels_match_queries(
            {"1": {}, "3": {}}, {"q1": "a", "q2": "b"}, "qrels/test.tsv", "queries.jsonl"
        )


def test_run_with_unknown_doc_ids_is_refused() -> None:
    check_run_docids({"q1": ["a", "b"]}, {"a", "b", "c"})
    mixed: Run = {"q1": {"a": 1.0, "y": 0.5}, "q2": ["x"]}
    with pytest.raises(ValueError, match=r"run\.trec holds 2 doc id\(s\) not in the corpus.*\['x', 'y'\]"):
        check_run_docids(mixed, {"a"}, run_name="run.trec")


def test_evaluate_run_files_and_table(tmp_path: Path) -> None:
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ta\t1\nq2\tc\t1\n", encoding="utf-8")
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n{"_id": "q2", "text": "y"}\n')
    write_run(tmp_path / "good.trec", {"q1": ["a", "b"], "q2": ["d", "c"]})
    write_run(tmp_path / "bad.trec", {"q1": ["b", "a"]})  # q2 missing: counts 0
    results = evaluate_run_files(
        [tmp_path / "good.trec", tmp_path / "bad.trec"],
        tmp_path / "qrels.tsv",
        ["mrr@10", "recall@1"],
        queries_path=tmp_path / "queries.jsonl",
        corpus_ids={"a", "b", "c", "d"},
    )
    assert results["good"].mean == pytest.approx({"mrr@10": (1 + 1 / 2) / 2, "recall@1": 1 / 2})
    assert results["bad"].mean == pytest.approx({"mrr@10": (1 / 2 + 0) / 2, "recall@1": 0.0})
    assert results["bad"].per_query["q2"] == {"mrr@10": 0.0, "recall@1": 0.0}
    table = format_table(results).splitlines()
    assert table[0].split() == ["run", "mrr@10", "recall@1"]
    assert table[1].split() == ["good", "0.7500", "0.5000"]
    with pytest.raises(ValueError, match="not in the corpus"):
        evaluate_run_files([tmp_path / "good.trec"], tmp_path / "qrels.tsv", corpus_ids={"a"})


def test_curves_and_unique_contribution() -> None:
    merged = {"q1": ["a", "x", "b"], "q2": ["c", "y"]}
    # q1: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> levels 0-0.5: 1, 0.6-1: 2/3. q2: 1 everywhere.
    np.testing.assert_allclose(pr_curve(merged, QRELS), [1.0] * 6 + [(2 / 3 + 1) / 2] * 5)
    # recall@1: q1 1/2, q2 1 -> 0.75; recall@3: both complete.
    assert recall_curve(merged, QRELS, [1, 3]) == pytest.approx({1: 0.75, 3: 1.0})
    branches = {"bm25": {"q1": ["a", "x", "b"], "q2": ["y", "c"]}, "dense": {"q1": ["b", "z"], "q2": ["c"]}}
    # Top 2: bm25 finds (q1,a) and (q2,c); dense finds (q1,b) and (q2,c); (q2,c) is shared.
    assert unique_contribution(branches, QRELS, k=2) == {"bm25": 1, "dense": 1}
    # Top 1: bm25 finds (q1,a) only; dense finds (q1,b) and (q2,c).
    assert unique_contribution(branches, QRELS, k=1) == {"bm25": 1, "dense": 2}


def test_randomization_test_matches_exact_enumeration() -> None:
    a = {f"q{i}": {"m": 0.0} for i in range(3)}
    b = {"q0": {"m": 0.1}, "q1": {"m": 0.2}, "q2": {"m": 0.3}}
    # Differences 0.1, 0.2, 0.3 (sum 0.6). Of the 8 sign flips only +++ and --- reach |sum| >= 0.6: p = 2/8.
    result = paired_randomization_test(a, b, "m", n_permutations=10_000, seed=0)
    assert result.delta == pytest.approx(0.2)
    assert result.p_value == pytest.approx(0.25)  # 10,000 covers the 8 assignments: the exact p
    assert paired_randomization_test(a, b, "m", seed=0) == result  # seeded: reproducible


def test_randomization_test_on_random_scores() -> None:
    rng = np.random.default_rng(7)
    diffs = rng.normal(0.05, 0.2, size=10)
    a = {f"q{i}": {"m": 0.5} for i in range(10)}
    b = {f"q{i}": {"m": 0.5 + d} for i, d in enumerate(diffs)}
    flips = np.array(list(itertools.product([-1, 1], repeat=10)))
    exact = np.mean(np.abs(flips @ diffs) >= abs(diffs.sum()) - 1e-12)  # all 1,024 assignments
    result = paired_randomization_test(a, b, "m", n_permutations=20_000, seed=1)
    assert result.p_value == pytest.approx(exact, abs=0.02)
    assert paired_randomization_test(a, a, "m").p_value == 1.0  # identical runs: no evidence at all
    big = {f"q{i}": {"m": 0.9} for i in range(10)}
    assert paired_randomization_test(a, big, "m").p_value < 0.01  # +0.4 on every query: 2/1024 exactly


def test_randomization_test_input_errors() -> None:
    with pytest.raises(ValueError, match=r"different queries: only in A \['q2'\]"):
        paired_randomization_test({"q1": {"m": 1.0}, "q2": {"m": 1.0}}, {"q1": {"m": 0.0}}, "m")
    with pytest.raises(ValueError, match=r"metric 'ndcg@10' is missing; available: \['m'\]"):
        paired_randomization_test({"q1": {"m": 1.0}}, {"q1": {"m": 0.0}}, "ndcg@10")


def test_most_changed_queries() -> None:
    a = {"q1": {"m": 0.5}, "q2": {"m": 0.75}, "q3": {"m": 0.25}, "q4": {"m": 0.5}}
    b = {"q1": {"m": 0.5}, "q2": {"m": 0.25}, "q3": {"m": 0.75}, "q4": {"m": 0.625}}
    changes = most_changed_queries(a, b, "m", n=2)
    # |delta|: q2 0.5, q3 0.5 (tie -> by qid), q4 0.125, q1 unchanged (left out).
    assert [(c.qid, c.delta) for c in changes] == [("q2", -0.5), ("q3", 0.5)]
    assert [c.qid for c in most_changed_queries(a, b, "m")] == ["q2", "q3", "q4"]


def test_evaluate_runs_reports_every_judged_query() -> None:
    results = evaluate_runs({"r": {"q1": ["b"], "q7": ["a"]}}, QRELS, ["ndcg@10"])
    assert set(results["r"].per_query) == {"q1", "q2"}  # q7 has no judgments, q2 is missing from the run
    # q1: DCG 1, IDCG 1 + 1/log2(3) = 1.630930 -> 0.613147; q2: 0.
    assert results["r"].mean["ndcg@10"] == pytest.approx(0.613147 / 2, abs=1e-6)
