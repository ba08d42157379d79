"""The `searchrec` command line: build → eval on a slice, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import api.metrics  # noqa: F401 (see below)
from api.cli import app
from api.cli.evaluate import SEARCH_METRICS
from indexer.artifact import ArtifactError
from tests.conftest import SCIFACT

# `serve` with several workers (the default on a multi-core machine) sets prometheus_client's multiprocess
# folder before prometheus_client is first imported, for the workers; these tests run the command in this
# process, so prometheus_client is imported above, before any of them, and this process stays single-process.
runner = CliRunner()


def _slice_qrels(root: Path, out: Path) -> list[str]:
    """Keep only the test judgments whose documents are inside the indexed slice."""
    from indexer.ids import read_ids
    from indexer.versions import resolve_artifact

    inside = set(read_ids(resolve_artifact(root)))
    lines = (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()
    kept = [line for line in lines[1:] if line.split("\t")[1] in inside]
    out.write_text("\n".join([lines[0], *kept]) + "\n")
    return kept


def test_eval_reports_every_metric_for_merged_and_branches(scifact_slice_root: Path, tmp_path: Path) -> None:
    qrels = tmp_path / "qrels.tsv"
    kept = _slice_qrels(scifact_slice_root, qrels)
    assert len(kept) >= 5

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
    assert set(report["metrics"]) == {"merged", "bm25", "dense", "w2v"}
    for values in report["metrics"].values():
        assert set(values) == set(SEARCH_METRICS)
        assert all(0.0 <= v <= 1.0 for v in values.values())
    assert set(report["unique_relevant_top100"]) == {"bm25", "dense", "w2v"}
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


def test_serve_passes_the_query_limit_from_option_or_environment(
    scifact_slice_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from api.cli.serve import MAX_QUERY_CHARS_ENV
    from api.schemas import DEFAULT_MAX_QUERY_CHARS

    served: list[int] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: served.append(app.state.max_query_chars))
    monkeypatch.delenv(MAX_QUERY_CHARS_ENV, raising=False)
    index = ["serve", "--index", str(scifact_slice_root), "--workers", "1"]
    assert runner.invoke(app, index).exit_code == 0
    assert runner.invoke(app, [*index, "--max-query-chars", "500"]).exit_code == 0
    assert runner.invoke(app, index, env={MAX_QUERY_CHARS_ENV: "70000"}).exit_code == 0
    assert served == [DEFAULT_MAX_QUERY_CHARS, 500, 70_000]
    refused = runner.invoke(app, [*index, "--max-query-chars", "0"])
    assert refused.exit_code == 2 and "--max-query-chars" in refused.output


def test_serve_with_workers_sets_their_environment_before_loading(
    scifact_slice_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import api.workers
    from api.workers import MULTIPROC_ENV, ServeSettings

    calls: list[tuple[ServeSettings, dict, str, str]] = []

    def serve_workers(settings: ServeSettings, app_factory: object, **options: object) -> None:
        calls.append((settings, options, os.environ["OMP_NUM_THREADS"], os.environ[MULTIPROC_ENV]))

    monkeypatch.setattr(api.workers, "serve_workers", serve_workers)
    for name in (MULTIPROC_ENV, "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    command = ["serve", "--index", f"sf={scifact_slice_root}", "--workers", "2", "--max-query-chars", "500"]
    assert runner.invoke(app, [*command, "--watch", "2"]).exit_code == 0
    [(settings, options, threads, metrics_dir)] = calls
    assert options == {"workers": 2, "host": "127.0.0.1", "port": 8000}
    assert settings.indexes == {"sf": scifact_slice_root}
    assert (settings.max_query_chars, settings.watch_interval_s) == (500, 2.0)
    assert threads == str(settings.threads) and settings.threads >= 1
    assert settings.run_dir is not None and metrics_dir == str(settings.run_dir / "metrics")
    assert not settings.run_dir.exists()  # removed when serving ends
    assert MULTIPROC_ENV not in os.environ and "OMP_NUM_THREADS" not in os.environ
    refused = runner.invoke(app, [*command, "--workers", "0"])
    assert refused.exit_code == 2 and "--workers" in refused.output


def _published(root: Path, name: str | None = None) -> Path:
    """A root publishing one collection manifest (no parts): enough to name it, not to load it."""
    from indexer.artifact import write_manifest
    from indexer.config import BuildConfig
    from indexer.manifests import COLLECTION_KIND
    from indexer.versions import VersionStore

    with VersionStore(root).build() as (_, staging):
        params = {
            "config": BuildConfig().model_dump(),
            "name": name,
            "corpus": "items.jsonl",
            "encoder": {"kind": "torch"},
            "word2vec": {"trained": False},
            "behaviour": None,
        }
        write_manifest(staging, kind=COLLECTION_KIND, params=params)
    return root


def test_serve_refuses_two_collections_with_one_name(tmp_path: Path) -> None:
    from api.app import collection_roots

    _published(tmp_path / "x")
    _published(tmp_path / "y")
    result = runner.invoke(app, ["serve", "--index", f"a={tmp_path / 'x'}", "--index", f"a={tmp_path / 'y'}"])
    assert result.exit_code == 2
    assert "two indexes are both named 'a'" in result.output
    # A bare root is named after its folder, so it clashes with an explicit name too.
    with pytest.raises(ValueError, match="two indexes are both named 'x'"):
        collection_roots([("x", tmp_path / "y"), tmp_path / "x"])
    assert collection_roots([("a", tmp_path / "x"), (None, tmp_path / "y")]) == {
        "a": tmp_path / "x",
        "y": tmp_path / "y",
    }
    # A root built with a name is served under it; one without a published collection is refused.
    assert collection_roots([_published(tmp_path / "z", "movies")]) == {"movies": tmp_path / "z"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="no published version"):
        collection_roots([tmp_path / "empty"])


def test_written_run_evaluates_to_the_same_numbers_and_compares(
    scifact_slice_root: Path, tmp_path: Path
) -> None:
    from jobs.evaluation import read_run, write_run

    qrels = tmp_path / "qrels.tsv"
    _slice_qrels(scifact_slice_root, qrels)
    run_a = tmp_path / "hybrid.run"
    report_dir = tmp_path / "report"
    common = ["--qrels", str(qrels), "--json"]
    piped = runner.invoke(
        app,
        [
            "eval",
            "--index",
            str(scifact_slice_root),
            "--queries",
            str(SCIFACT / "queries.jsonl"),
            *common,
            "--no-progress",
            "--k",
            "100",
            "--write-run",
            str(run_a),
            "--report",
            str(report_dir),
        ],
    )
    assert piped.exit_code == 0, piped.output
    from_file = runner.invoke(app, ["eval", "--run", str(run_a), *common])
    assert from_file.exit_code == 0, from_file.output
    merged = json.loads(piped.stdout)["metrics"]["merged"]
    assert json.loads(from_file.stdout)["metrics"]["hybrid"] == pytest.approx(merged, abs=1e-9)
    for name in ("report.html", "metrics.json", "pr_curve.png", "recall_at_k.png", "ndcg10_hist.png"):
        assert (report_dir / name).stat().st_size > 0

    # B reverses every ranking: nDCG@10 must drop, and the randomisation test must see it.
    reversed_run = {qid: sorted(docs, key=docs.get) for qid, docs in read_run(run_a).items()}
    run_b = write_run(tmp_path / "reversed.run", reversed_run)
    compared = runner.invoke(app, ["eval", "--compare", str(run_a), str(run_b), *common])
    assert compared.exit_code == 0, compared.output
    test = json.loads(compared.stdout)["tests"]["ndcg@10"]
    assert test["delta"] < 0
    assert test["p_value"] < 0.05


def test_eval_over_http_equals_the_in_process_pipeline(scifact_slice_root: Path, tmp_path: Path) -> None:
    import socket
    import threading
    import time

    import uvicorn

    from api.app import create_app

    qrels = tmp_path / "qrels.tsv"
    _slice_qrels(scifact_slice_root, qrels)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(scifact_slice_root), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:  # startup, not a timing assumption: the loop waits as long as it takes
            assert thread.is_alive(), "the server failed to start"
            time.sleep(0.05)
        common = ["eval", "--queries", str(SCIFACT / "queries.jsonl"), "--qrels", str(qrels), "--k", "100"]
        over_http = runner.invoke(
            app, [*common, "--url", f"http://127.0.0.1:{port}", "--json", "--no-progress"]
        )
        in_process = runner.invoke(
            app, [*common, "--index", str(scifact_slice_root), "--json", "--no-progress"]
        )
        missing = runner.invoke(app, [*common, "--url", f"http://127.0.0.1:{port}", "--collection", "nope"])
    finally:
        server.should_exit = True
        thread.join()
    assert over_http.exit_code == 0, over_http.output
    http_report, local_report = json.loads(over_http.stdout), json.loads(in_process.stdout)
    assert http_report["served_by"][0]["scorer"] == "fusion"
    assert http_report["metrics"]["merged"] == local_report["metrics"]["merged"]
    assert missing.exit_code == 2 and "answered 404" in missing.output
