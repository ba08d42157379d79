"""The evaluation report: files written, numbers in metrics.json, figures that are real PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.evaluation.report import write_report
from ranker.metrics import Run

QRELS = {"q1": {"a": 1, "b": 1}, "q2": {"c": 1}}
BRANCHES: dict[str, Run] = {
    "bm25": {"q1": ["a", "x", "b"], "q2": ["y", "c"]},
    "dense": {"q1": {"b": 0.9, "z": 0.1}, "q2": ["c"]},
}
MERGED = {"q1": ["a", "x", "b"], "q2": ["c", "y"]}


def test_report_files_and_numbers(tmp_path: Path) -> None:
    files = write_report(
        tmp_path / "report", BRANCHES, MERGED, QRELS, metrics=["ndcg@10", "recall@1"], unique_k=2
    )
    for path in [files.html, files.metrics_json, *files.figures.values()]:
        assert path.is_file() and path.stat().st_size > 0, path
    for png in files.figures.values():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(files.metrics_json.read_text(encoding="utf-8"))
    assert list(summary["runs"]) == ["merged", "bm25", "dense"]
    merged = summary["runs"]["merged"]
    # q1 = a x b: DCG 1 + 1/log2(4) = 1.5, IDCG 1 + 1/log2(3) = 1.630930 -> 0.919721; q2 = c first -> 1.
    assert merged["per_query"]["q1"]["ndcg@10"] == pytest.approx(1.5 / 1.630930, abs=1e-6)
    assert merged["mean"]["ndcg@10"] == pytest.approx((1.5 / 1.630930 + 1) / 2, abs=1e-6)  # 0.959860
    assert merged["mean"]["recall@1"] == pytest.approx(0.75)  # q1 1/2, q2 1
    # dense: q1 = b z (ndcg 1/1.630930 = 0.613147), q2 = c (1).
    assert summary["runs"]["dense"]["mean"]["ndcg@10"] == pytest.approx((1 / 1.630930 + 1) / 2, abs=1e-6)
    # Top 2: bm25 alone has (q1,a), dense alone has (q1,b); both have (q2,c).
    assert summary["unique_contribution"] == {"k": 2, "relevant_pairs": {"bm25": 1, "dense": 1}}
    # Merged PR: q1 gives 1 up to recall 0.5 then 2/3, q2 gives 1 -> 1 (x6), 0.833333 (x5).
    assert summary["pr_curve"]["precision"]["merged"] == pytest.approx([1.0] * 6 + [5 / 6] * 5)
    assert summary["recall_at_k"]["bm25"]["1"] == pytest.approx(0.25)  # q1 a -> 1/2, q2 y -> 0
    page = files.html.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3  # figures embedded, so the page is self-contained
    assert "<td>merged</td><td>0.9599</td><td>0.7500</td>" in page


def test_report_refuses_a_branch_named_like_the_merged_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'merged' clashes"):
        write_report(tmp_path, {"merged": MERGED}, MERGED, QRELS)
