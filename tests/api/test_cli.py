"""The `searchrec` command line: build → eval on a slice, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from tests.conftest import SCIFACT

runner = CliRunner()


def test_eval_reports_every_metric_for_merged_and_branches(scifact_slice_root: Path, tmp_path: Path) -> None:
    # Keep only the test judgments whose documents are inside the 200-document slice.
    from indexer.build import read_ids
    from indexer.versions import resolve_artifact

    inside = set(read_ids(resolve_artifact(scifact_slice_root)))
    lines = (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()
    kept = [line for line in lines[1:] if line.split("\t")[1] in inside]
    assert len(kept) >= 5
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("\n".join([lines[0], *kept]) + "\n")

    result = runner.invoke(
        app,
        [
            "eval",
            "--index",
            str(scifact_slice_root),
            "--queries",
            str(SCIFACT / "queries.jsonl"),
            "--qrels",
            str(qrels),
            "--json",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["queries"] == len({line.split("\t")[0] for line in kept})
    assert set(report["metrics"]) == {"merged", "bm25", "dense"}
    for values in report["metrics"].values():
        assert set(values) == {"ndcg@10", "recall@100", "map@100", "mrr@10"}
        assert all(0.0 <= v <= 1.0 for v in values.values())
    # Each judged document is in the slice, so the hybrid ranking must find most of them.
    assert report["metrics"]["merged"]["recall@100"] > 0.8


def test_build_rejects_a_folder_without_corpus(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", "--corpus", str(tmp_path), "--out", str(tmp_path / "idx")])
    assert result.exit_code == 2
    assert "corpus.jsonl does not exist" in result.output
    assert not (tmp_path / "idx" / "CURRENT").exists()


def test_eval_refuses_qrels_that_match_no_query(scifact_slice_root: Path, tmp_path: Path) -> None:
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nnope\t4983\t1\n")
    result = runner.invoke(
        app,
        [
            "eval",
            "--index",
            str(scifact_slice_root),
            "--queries",
            str(SCIFACT / "queries.jsonl"),
            "--qrels",
            str(qrels),
            "--no-progress",
        ],
    )
    assert result.exit_code == 2
    assert "no query id" in result.output


def test_serve_refuses_an_unbuilt_root(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "--index", str(tmp_path)])
    assert result.exit_code == 2
    assert "no published version" in result.output
