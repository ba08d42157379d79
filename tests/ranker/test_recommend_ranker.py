"""The learned ranker for `/recommend` on a MovieLens slice: train on behaviour, serve, compare with fusion.

The slice: the 150 movies most rated by the first 60 users, and those users' ratings of them.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from indexer.artifact import rewrite_manifest
from indexer.encoders.torch import Encoder
from indexer.versions import resolve_artifact
from ranker.artifact import read_ranker
from ranker.features import FeatureExtractor, read_feature_log
from retrieval.service import CollectionService

MOVIELENS = Path(__file__).resolve().parents[2] / "data" / "movielens"
CONFIG = Path(__file__).resolve().parents[2] / "data" / "configs" / "movies.toml"
runner = CliRunner()


@pytest.fixture(scope="module")
def movies(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> tuple[Path, Path]:
    """(index root, events CSV) of the slice."""
    from indexer.build import build_collection
    from indexer.config import BuildConfig
    from indexer.demo_data import movielens_items

    folder = tmp_path_factory.mktemp("movies")
    with (MOVIELENS / "ratings.csv").open(newline="") as handle:
        ratings = [row for row in csv.DictReader(handle) if int(row["userId"]) <= 60]
    kept = {movie for movie, _ in Counter(r["movieId"] for r in ratings).most_common(150)}
    events = folder / "ratings.csv"
    with events.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["userId", "movieId", "rating", "timestamp"])
        writer.writeheader()
        writer.writerows(r for r in ratings if r["movieId"] in kept)
    everything = folder / "all-movies.jsonl"
    movielens_items(MOVIELENS, everything)
    items = folder / "movies.jsonl"
    lines = everything.read_text(encoding="utf-8").splitlines()
    items.write_text("".join(line + "\n" for line in lines if json.loads(line)["id"] in kept))
    root = folder / "index"
    build_collection(
        items, root, BuildConfig.from_toml(CONFIG), behaviour=events, encoder=encoder, progress=False
    )
    return root, events


@pytest.fixture(scope="module")
def ranker(movies: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root, events = movies
    out = tmp_path_factory.mktemp("rankers") / "movies"
    args = ["train-ranker", "--index", str(root), "--behaviour", str(events), "--out", str(out)]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_behaviour_training_labels_each_users_last_event(
    movies: tuple[Path, Path], ranker: tuple[Path, str]
) -> None:
    out, output = ranker
    with movies[1].open(newline="") as handle:
        per_user = Counter(row["userId"] for row in csv.DictReader(handle))
    assert "| fusion (no ranker) |" in output and "| lambdamart |" in output and "kept " in output
    params = json.loads((resolve_artifact(out) / "manifest.json").read_text())["params"]
    training = params["training"]
    assert training["task"] == "recommend"
    assert training["train_users"] + training["valid_users"] == sum(n >= 2 for n in per_user.values())
    assert 0 < training["valid_users_with_label_in_recall"] <= training["valid_users"]
    names = params["feature_names"]
    assert {"rank_covisit", "rank_item2item", "tag_pref", "item2vec_last5", "popularity"} <= set(names)
    assert "category_pref" not in names  # optional, and the slice's tags are multi-valued: dropped


def test_recommend_features_logged_online_equal_offline(
    movies: tuple[Path, Path], ranker: tuple, tmp_path: Path
) -> None:
    root, _ = movies
    out, _ = ranker
    log = tmp_path / "features.jsonl"
    service = CollectionService.open(root, ranker=out, feature_log=log)
    assert service.ranker.error is None
    users = ["1", "7", "15", "42"]
    for user in users:
        answer = service.search(service.recommendation(10, user_id=user))
        assert answer.scorer == read_ranker(out).model_type and len(answer.hits) == 10
        seen = set(service.collection.external_ids_of(service.collection.behaviour.history(user)[0].tolist()))
        assert not seen & {hit.id for hit in answer.hits}
    searched = service.search("toy story", 5)  # a text search is not what this ranker learned
    assert searched.scorer == "fusion" and len(searched.hits) == 5
    # No user: the request's own items, here user 1's last three (what a client would send). Not arbitrary
    # rows: whether a made-up list lies in the ranker's domain hangs on item2vec's training noise.
    named = service.collection.external_ids_of(service.collection.behaviour.history("1")[0][-3:].tolist())
    answer = service.search(service.recommendation(10, items=named))
    assert len(answer.hits) == 10 and not set(named) & {hit.id for hit in answer.hits}
    service.close()
    fresh = CollectionService.open(root)
    extractor = FeatureExtractor(read_ranker(out).declaration, fresh.collection)
    logged = list(read_feature_log(log))
    assert [r.context.user_id for r in logged] == [*users, None]
    assert logged[-1].items == named
    for record in logged:
        recomputed = extractor.extract(record.context_in(extractor.view), record.candidates(extractor.view))
        np.testing.assert_allclose(recomputed, record.features, rtol=0, atol=1e-6)
    fresh.close()


def test_recommend_explains_each_hits_features_over_http(movies: tuple[Path, Path], ranker: tuple) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    root, _ = movies
    out, _ = ranker
    with TestClient(create_app({"movies": root}, rankers={"movies": out})) as client:
        body = client.post("/recommend", json={"user_id": "7", "k": 5, "explain": True}).json()
    assert body["scorer"] == read_ranker(out).model_type and len(body["results"]) == 5
    names = read_ranker(out).declaration.names
    for hit in body["results"]:
        assert list(hit["features"]) == [*names, "_score"]
        assert hit["features"]["_score"] == pytest.approx(hit["score"])


def test_eval_rec_compares_the_ranker_with_fusion_on_held_out_events(
    movies: tuple[Path, Path], tmp_path: Path
) -> None:
    root, events = movies
    args = ["eval-rec", "--index", str(root), "--behaviour", str(events), "--train-ranker", "--json"]
    result = runner.invoke(app, [*args, "--workdir", str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    runs = report["metrics"]
    ranked = [name for name in runs if name.startswith("searchrec+")]
    assert len(ranked) == 1 and {"searchrec", "popularity", "item_knn"} <= set(runs)
    for values in runs.values():
        assert 0.0 <= values["ndcg@10"] <= values["hr@10"] <= 1.0
    # the ranker was trained on the history alone: its labels are the second-to-last events
    params = json.loads((resolve_artifact(tmp_path / "ranker") / "manifest.json").read_text())["params"]
    assert params["training"]["behaviour"] == str(tmp_path / "history.csv")


def test_a_rebuild_without_its_corpus_is_a_clear_error(movies: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    root, events = movies
    moved = tmp_path / "index"
    shutil.copytree(root, moved)
    version = resolve_artifact(moved)
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["params"]["corpus"] = str(tmp_path / "gone.jsonl")
    rewrite_manifest(version, manifest)
    args = ["train-ranker", "--index", str(moved), "--behaviour", str(events), "--out", str(tmp_path / "r")]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 2 and "gone.jsonl, which is not there" in result.output
    assert not (tmp_path / "r").exists()
