"""Serving a collection whose items carried their own vectors: no query encoder, the dense branch's gate
closed for text queries, `/similar` and the ranker's item-vector features on the stored vectors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.encoders import SUPPLIED, query_encoder_kind
from indexer.encoders.supplied import SuppliedVectors
from ranker.features import FeatureExtractor
from ranker.features.collection import CollectionView
from ranker.features.declarations import FeatureDeclaration, UnsatisfiableDeclaration, check, resolve
from ranker.features.defaults import default_search_declaration
from ranker.scoring import Candidate, RankingContext
from retrieval.collection import Collection
from retrieval.service import CollectionService
from tests.indexer.test_item_vectors import PER_TOPIC, build_vectors, topic_rows, write_vector_items


@pytest.fixture(scope="module")
def supplied_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("supplied")
    corpus = write_vector_items(folder / "items.jsonl", topic_rows())
    build_vectors(corpus, folder / "idx")
    return folder / "idx"


@pytest.fixture(scope="module")
def service(supplied_root: Path) -> Iterator[CollectionService]:
    opened = CollectionService.open(supplied_root)
    yield opened
    opened.close()


def test_the_collection_loads_without_a_query_encoder(service: CollectionService) -> None:
    collection = service.collection
    assert collection.built_with == collection.encoder.kind == SUPPLIED
    assert isinstance(collection.encoder.inner, SuppliedVectors)
    with pytest.raises(ValueError, match="supplied with its items; no encoder embeds text"):
        collection.encoder.encode_queries(["pizza"])


def test_a_text_search_runs_without_the_dense_branch_and_is_not_degraded(service: CollectionService) -> None:
    answer = service.search("wood fired pizza", 5)
    assert "dense" not in answer.branch_counts and answer.degraded == []
    assert answer.branch_counts["bm25"] == PER_TOPIC
    assert {hit.id.split("-")[0] for hit in answer.hits} == {"pizza"}


def test_similar_finds_neighbours_by_the_stored_vectors(service: CollectionService) -> None:
    answer = service.similar("sushi-0", PER_TOPIC - 1)
    assert sorted(hit.id for hit in answer.hits) == [f"sushi-{i}" for i in range(1, PER_TOPIC)]
    assert all(0.9 < hit.score <= 1.0 + 1e-6 for hit in answer.hits)  # cosine of unit vectors
    assert answer.scorer == "dense"


def test_the_ranker_reads_item_vectors_but_embeds_no_query(service: CollectionService) -> None:
    collection = service.collection
    declaration = FeatureDeclaration.model_validate(
        {
            "features": [
                {"name": "dense_cos", "calc": "cosine"},
                {"name": "prf", "calc": "prf_cosine", "params": {"top": 2}},
            ]
        }
    )
    missing = check(declaration, CollectionView(collection), ["bm25", "dense"])
    assert list(missing) == ["dense_cos"]
    assert "supplied with the items; no encoder embeds a query into their space" in missing["dense_cos"][0]
    with pytest.raises(UnsatisfiableDeclaration, match="dense_gap: the dense vectors were supplied"):
        resolve(default_search_declaration(), CollectionView(collection), ["bm25", "dense"])

    prf = FeatureDeclaration.model_validate({"features": declaration.model_dump()["features"][1:]})
    rows = [collection.row_of[item] for item in ("pizza-0", "pizza-1", "books-0")]
    candidates = [Candidate(row=row, fused_score=1.0 / (rank + 1)) for rank, row in enumerate(rows)]
    values = FeatureExtractor(prf, collection).extract(RankingContext(text="pizza"), candidates)[:, 0]
    assert values[0] > 0.9 and values[1] > 0.9 and values[2] < 0.9  # the top two's centroid is pizza


def test_only_auto_and_build_fit_supplied_vectors(supplied_root: Path) -> None:
    assert query_encoder_kind(SUPPLIED) == query_encoder_kind(SUPPLIED, "build") == SUPPLIED
    with pytest.raises(ValueError, match=r"query encoder 'onnx-int8' cannot embed.*choose auto or build"):
        Collection.load(supplied_root, query_encoder="onnx-int8")
    collection = Collection.load(supplied_root, query_encoder="build")
    try:
        assert collection.encoder.kind == SUPPLIED
        assert np.isfinite(collection.vectors.reconstruct(np.arange(2))).all()
    finally:
        collection.close()


def test_an_upsert_brings_its_own_vector_and_similar_finds_it(supplied_root: Path, tmp_path: Path) -> None:
    import shutil

    from retrieval.errors import RequestError

    root = tmp_path / "idx"
    shutil.copytree(supplied_root, root)
    opened = CollectionService.open(root)
    try:
        rows = np.array([opened.collection.row_of["sushi-0"]])
        near_sushi = opened.collection.vectors.reconstruct(rows)[0].tolist()
        with pytest.raises(RequestError, match="has 3 dimensions; this collection's vectors have 8"):
            opened.live.upsert("sushi-new", {"title": "Sushi bar", "vector": [1.0, 0.0, 0.0]})
        with pytest.raises(RequestError, match=r"body\.vector"):  # every item of this collection has one
            opened.live.upsert("sushi-new", {"title": "Sushi bar"})
        opened.live.upsert("sushi-new", {"title": "Sushi bar", "text": "nigiri", "vector": near_sushi})
        neighbours = [hit.id for hit in opened.similar("sushi-new", PER_TOPIC - 1).hits]
        assert len(neighbours) == PER_TOPIC - 1
        assert set(neighbours) <= {f"sushi-{i}" for i in range(PER_TOPIC)}
        assert "sushi-new" in [hit.id for hit in opened.search("nigiri sushi bar", 3).hits]
    finally:
        opened.close()
