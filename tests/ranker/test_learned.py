"""The learned ranker end to end on a SciFact slice: train, serve, log, and the online/offline guarantee.

Features logged online by the serving scorer are recomputed offline by the training code path on a freshly
loaded collection; they must agree to 1e-6 (Augur's consistency guarantee).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app
from api.cli.serve import _rankers
from indexer.artifact import ArtifactError, rewrite_manifest
from indexer.versions import resolve_artifact
from jobs.evaluation import read_qrels, read_queries
from ranker.artifact import read_ranker
from ranker.features import FeatureExtractor, FeatureLogger, UnsatisfiableDeclaration, read_feature_log
from ranker.learned import load_ranker
from ranker.training import CANDIDATE_LIMITS, CandidateRecorder, collect_search_examples, truncated
from retrieval.candidates import SearchQuery
from retrieval.service import CollectionService
from tests.conftest import SCIFACT

runner = CliRunner()


@pytest.fixture(scope="module")
def slice_judgments(scifact_slice_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SciFact train judgments whose documents are inside the slice (31 queries)."""
    from indexer.ids import read_ids

    inside = set(read_ids(resolve_artifact(scifact_slice_root)))
    lines = (SCIFACT / "qrels" / "train.tsv").read_text().splitlines()
    kept = [line for line in lines[1:] if line.split("\t")[1] in inside]
    path = tmp_path_factory.mktemp("judgments") / "train.tsv"
    path.write_text("\n".join([lines[0], *kept]) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(
    scifact_slice_root: Path, slice_judgments: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple:
    out = tmp_path_factory.mktemp("rankers") / "scifact"
    args = ["train-ranker", "--index", str(scifact_slice_root), "--queries", str(SCIFACT / "queries.jsonl")]
    args += ["--qrels", str(slice_judgments), "--out", str(out), "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture(scope="module")
def texts(slice_judgments: Path) -> dict[str, str]:
    queries = read_queries(SCIFACT / "queries.jsonl")
    return {qid: queries[qid] for qid in sorted(read_qrels(slice_judgments))[:6]}


def test_training_writes_a_versioned_ranker_with_both_models_measured(trained: tuple) -> None:
    out, output = trained
    assert "| lambdamart |" in output and "| listwise_mlp |" in output and "kept " in output
    manifest = json.loads((resolve_artifact(out) / "manifest.json").read_text())
    params = manifest["params"]
    assert manifest["kind"] == "ranker" and params["model_type"] in {"lambdamart", "listwise_mlp"}
    assert set(params["metrics"]) == {"lambdamart", "listwise_mlp"}
    assert all(0.0 <= m["valid_ndcg@10"] <= 1.0 for m in params["metrics"].values())
    best = max(params["metrics"], key=lambda kind: params["metrics"][kind]["valid_ndcg@10"])
    assert (
        params["metrics"][best]["valid_ndcg@10"] == params["metrics"][params["model_type"]]["valid_ndcg@10"]
    )
    assert params["training"]["branch_depth"] == 100 and params["training"]["train_queries"] == 25
    # The dense features were computed on the query vectors /search embeds by default for MiniLM: int8 ones.
    assert params["training"]["query_encoder"] == "onnx-int8" and "queries embedded by onnx-int8" in output
    assert read_ranker(out).params.training.query_encoder == "onnx-int8"
    assert params["feature_names"] == [f["name"] for f in params["features"]["features"]]
    # The candidate limit and tree size were chosen on validation among the settings tried.
    assert params["training"]["max_candidates"] in CANDIDATE_LIMITS
    assert set(params["training"]["bounds_tried"]) >= {
        f"limit={n or 'all'} leaves=127" for n in CANDIDATE_LIMITS
    }
    assert 0.0 <= params["domain"]["refused_valid_share"] <= 0.02


def test_online_features_equal_offline_recomputation(
    scifact_slice_root: Path, trained: tuple, texts: dict[str, str], slice_judgments: Path, tmp_path: Path
) -> None:
    out, _ = trained
    online = CollectionService.open(scifact_slice_root)
    branches = [source.name for source in online.pipeline.sources]
    log = tmp_path / "features.jsonl"
    online.pipeline.scorer = load_ranker(out, online.collection, branches=branches, logger=FeatureLogger(log))
    for text in texts.values():
        answer = online.search(text, 10)
        assert answer.scorer == online.pipeline.scorer.name and len(answer.hits) == 10
        scores = [hit.score for hit in answer.hits]
        assert scores == sorted(scores, reverse=True)
    logged = {r.context.text: r for r in read_feature_log(log)}
    assert sorted(logged) == sorted(texts.values())

    recorder = CandidateRecorder()  # the training job's code path, on a freshly loaded collection
    offline = CollectionService.open(scifact_slice_root, scorer=recorder)
    extractor = FeatureExtractor(read_ranker(out).declaration, offline.collection, branches=branches)

    def run(text: str, only: frozenset[str] | None) -> tuple:
        offline.run(SearchQuery(text=text, k=10, branches=only))
        return recorder.take()

    examples = collect_search_examples(
        run, extractor.ids_of, texts, read_qrels(slice_judgments), progress=False
    )
    examples = truncated(examples, read_ranker(out).max_candidates)  # what the ranker scores, as trained
    assert len(examples) == len(texts)
    for example in examples:
        record = logged[example.context.text]
        assert extractor.ids_of(example.candidates) == record.ids
        recomputed = extractor.extract(example.context, example.candidates)
        np.testing.assert_allclose(recomputed, record.features, rtol=0, atol=1e-6)
        from_log = extractor.extract(record.context_in(extractor.view), record.candidates(extractor.view))
        np.testing.assert_allclose(from_log, record.features, rtol=0, atol=1e-6)
    online.close()
    offline.close()


def test_scorer_scores_every_candidate_in_place_and_explains(
    scifact_slice_root: Path, trained: tuple
) -> None:
    out, _ = trained
    recorder = CandidateRecorder()
    service = CollectionService.open(scifact_slice_root, scorer=recorder)
    scorer = load_ranker(out, service.collection)
    service.run("vitamin D and bone density", 10)
    context, candidates = recorder.take()
    order = [c.row for c in candidates]
    scores = scorer.score(context, candidates)
    assert scores.shape == (len(candidates),) and np.isfinite(scores).all()
    assert [c.row for c in candidates] == order  # nothing dropped or moved
    explained = scorer.explain(context, candidates)
    assert list(explained[0])[:-1] == scorer.feature_names
    np.testing.assert_allclose([row["_score"] for row in explained], scores)
    lexical = [
        dataclasses.replace(c, ranks={k: v for k, v in c.ranks.items() if k != "dense"}) for c in candidates
    ]
    lexical = [c for c in lexical if c.ranks]
    assert scorer.applies(context, candidates) and scorer.task == "search"
    assert not scorer.applies(context, lexical)  # outside the model's regime: the fusion order is kept
    assert not scorer.applies(dataclasses.replace(context, text=""), candidates)  # not a search
    np.testing.assert_array_equal(scorer.score(context, lexical), [c.fused_score for c in lexical])
    assert all(row["_fusion_fallback"] == 1.0 for row in scorer.explain(context, lexical))
    service.close()


def test_incompatible_rankers_are_refused_at_load(
    scifact_slice_root: Path, trained: tuple, tmp_path: Path
) -> None:
    out, _ = trained
    service = CollectionService.open(scifact_slice_root)
    with pytest.raises(UnsatisfiableDeclaration, match="no recall branch 'dense'"):
        load_ranker(out, service.collection, branches=["bm25"])
    with pytest.raises(ArtifactError, match="holds a 'collection' artifact, expected 'ranker'"):
        load_ranker(scifact_slice_root, service.collection)
    copy = tmp_path / "copy"
    shutil.copytree(resolve_artifact(out), copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["params"]["model_type"] = "transformer"
    rewrite_manifest(copy, manifest)
    with pytest.raises(ArtifactError, match="unknown model type 'transformer'"):
        load_ranker(copy, service.collection)
    service.close()


def test_served_ranker_scores_names_its_version_explains_and_logs(
    scifact_slice_root: Path, trained: tuple, tmp_path: Path
) -> None:
    out, _ = trained
    artifact = read_ranker(out)
    name = scifact_slice_root.resolve().name
    log = tmp_path / "served.jsonl"
    with TestClient(create_app(scifact_slice_root, rankers={name: out}, feature_log=log)) as client:
        ready = client.get("/readyz").json()
        assert ready["scorers"][name] == {
            "scorer": artifact.model_type, "version": artifact.version, "path": str(out), "error": None,
            "answered": {},
        }  # fmt: skip
        body = client.post(
            "/search",
            json={"query": "vitamin D and bone density", "k": 5, "explain": True},
            headers={"X-Request-ID": "trace-42"},
        ).json()
        anonymous = client.post(
            "/search", json={"query": "statins lower the risk of heart disease", "k": 3}
        ).json()
        short = client.post("/search", json={"query": "statins", "k": 3}).json()
        bad = client.post("/search", json={"query": "statins"}, headers={"X-Request-ID": "x" * 200})
        answered = client.get("/readyz").json()["scorers"][name]["answered"]
    assert body["scorer"] == artifact.model_type and body["scorer_version"] == artifact.version
    assert body["scorer_reason"] is None
    # A one-word query is unlike the claims the ranker was trained on: the fusion order answers, and says why.
    assert short["scorer"] == "fusion" and short["scorer_reason"].startswith("out of domain: ")
    assert answered == {"ranked": 2, "out_of_domain": 1}
    assert body["degraded"] == [] and len(body["results"]) == 5
    for hit in body["results"]:
        assert list(hit["features"]) == [*artifact.declaration.names, "_score"]
        assert hit["features"]["_score"] == pytest.approx(hit["score"])
    assert body["request_id"] == "trace-42" and len(anonymous["request_id"]) == 32
    assert bad.status_code == 422 and "x-request-id" in bad.text.lower()
    logged, other = list(read_feature_log(log))
    assert logged.request_id == "trace-42" and other.request_id == anonymous["request_id"]
    assert logged.meta["ranker_version"] == artifact.version
    assert logged.ids[:5] != [] and {h["id"] for h in body["results"]} <= set(logged.ids)


def test_a_ranker_the_collection_cannot_serve_is_refused_and_fusion_serves(
    scifact_slice_root: Path, trained: tuple, tmp_path: Path
) -> None:
    out, _ = trained
    copy = tmp_path / "needs-price"
    shutil.copytree(resolve_artifact(out), copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    features = manifest["params"]["features"]["features"]
    features[0] = {"name": "price", "calc": "column", "params": {"name": "price"}}
    rewrite_manifest(copy, manifest)
    name = scifact_slice_root.resolve().name
    with TestClient(create_app(scifact_slice_root, rankers={name: copy})) as client:
        ready = client.get("/readyz")
        body = client.post("/search", json={"query": "vitamin D and bone density", "k": 5}).json()
    assert ready.status_code == 200
    status = ready.json()["scorers"][name]
    assert status["scorer"] == "fusion" and "no numeric column 'price'" in status["error"]
    assert body["scorer"] == "fusion" and len(body["results"]) == 5
    missing = CollectionService.open(scifact_slice_root, ranker=tmp_path / "no-such-ranker")
    assert missing.ranker.error is not None and "no-such-ranker does not exist" in missing.ranker.error
    assert missing.search("statins", 3).scorer == "fusion"
    missing.close()


def test_a_ranker_failing_in_a_request_degrades_to_the_fusion_order(
    scifact_slice_root: Path, trained: tuple
) -> None:
    out, _ = trained
    fusion = CollectionService.open(scifact_slice_root)
    ranked = CollectionService.open(scifact_slice_root, ranker=out)
    assert ranked.ranker.error is None and ranked.ranker.scorer == read_ranker(out).model_type

    def broken(features: np.ndarray) -> np.ndarray:
        raise RuntimeError("model file went missing")

    ranked.pipeline.scorer.model.predict = broken  # type: ignore[attr-defined]
    answer = ranked.search("vitamin D and bone density", 10)
    expected = fusion.search("vitamin D and bone density", 10)
    assert answer.scorer == "fusion" and answer.degraded == ["ranker"]
    assert [h.id for h in answer.hits] == [h.id for h in expected.hits]
    fusion.close()
    ranked.close()


def test_serve_names_rankers_per_collection_or_for_all() -> None:
    names = ["scifact", "movies"]
    assert _rankers(["r/a"], names) == {"scifact": Path("r/a"), "movies": Path("r/a")}
    assert _rankers(["r/a", "movies=r/b"], names) == {"scifact": Path("r/a"), "movies": Path("r/b")}
    with pytest.raises(ValueError, match="no collection 'cities'"):
        _rankers(["cities=r/c"], names)


def test_reload_picks_up_a_newly_published_ranker(
    scifact_slice_root: Path, trained: tuple, tmp_path: Path
) -> None:
    from ranker.artifact import write_ranker
    from retrieval.registry import CollectionRegistry, service_opener

    out, _ = trained
    rankers = tmp_path / "rankers"
    shutil.copytree(out, rankers)
    registry = CollectionRegistry(
        {"scifact": scifact_slice_root}, opener=service_opener({"scifact": rankers})
    )
    registry.load()
    before = registry.get("scifact").ranker.version
    assert registry.reload() == []  # nothing new
    artifact = read_ranker(rankers)
    retrained, _ = write_ranker(
        rankers, artifact.model, artifact.declaration, metrics={}, training={"note": "retrained"}
    )
    (switched,) = registry.reload()
    assert (switched.old_ranker, switched.new_ranker) == (before, retrained) != (before, before)
    assert switched.old_version == switched.new_version  # the collection itself did not change
    answer = registry.get("scifact").search("vitamin D and bone density", 5)
    assert answer.scorer_version == retrained
    assert registry.reload() == []
    registry.close()


def test_a_declaration_file_chooses_the_features_and_model(
    scifact_slice_root: Path, slice_judgments: Path, tmp_path: Path
) -> None:
    declaration = tmp_path / "features.toml"
    declaration.write_text(
        '[[features]]\nname = "bm25_ratio"\ncalc = "bm25"\ntransforms = ["max_ratio"]\n\n'
        '[[features]]\nname = "dense_z"\ncalc = "cosine"\ntransforms = ["zscore"]\ngate = "dense"\n\n'
        '[[features]]\nname = "price"\ncalc = "column"\nparams = { name = "price" }\noptional = true\n'
    )
    out = tmp_path / "ranker"
    args = ["train-ranker", "--index", str(scifact_slice_root), "--queries", str(SCIFACT / "queries.jsonl")]
    args += ["--qrels", str(slice_judgments), "--out", str(out), "--features", str(declaration)]
    result = runner.invoke(app, [*args, "--model", "lambdamart", "--no-progress"])
    assert result.exit_code == 0, result.output
    artifact = read_ranker(out)
    assert artifact.declaration.names == [
        "bm25_ratio",
        "dense_z",
    ]  # the optional one it cannot compute: dropped
    assert artifact.model_type == "lambdamart" and "listwise_mlp" not in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[[features]]\nname = "x"\ncalc = "telepathy"\n')
    refused = runner.invoke(app, [*args[:-1], str(bad), "--no-progress"])
    assert refused.exit_code == 2 and "unknown calc op 'telepathy'" in refused.output


def test_a_bounded_ranker_scores_the_best_fused_and_keeps_the_rest_in_fusion_order(
    scifact_slice_root: Path, trained: tuple
) -> None:
    out, _ = trained
    recorder = CandidateRecorder()
    service = CollectionService.open(scifact_slice_root, scorer=recorder)
    scorer = load_ranker(out, service.collection)
    scorer.max_candidates = 5
    scorer.domain = None  # the bound alone is under test here
    service.run("vitamin D and bone density", 10)
    context, candidates = recorder.take()
    assert len(candidates) > 5
    scored = scorer.score_explained(context, candidates, explain=True)
    head, tail = scored.scores[:5], scored.scores[5:]
    assert tail.max() < head.min() and len(set(tail.tolist())) == 1  # below every scored one, all equal
    order = np.argsort(-scored.scores, kind="stable")
    assert order[5:].tolist() == list(range(5, len(candidates)))  # the tail keeps its fusion order
    assert scored.features is not None and all("_unscored" in row for row in scored.features[5:])
    assert list(scored.features[0])[:-1] == scorer.feature_names
    service.close()
