"""Item upserts through the REST API on the shops collection (with Word2Vec and behaviour): a written item is
found by every branch in the next request, one written unchanged scores exactly as its built row, a
replacement leaves no trace of the old text, bad items get a 422 naming the field, writes need the admin
token, and a restart replays them; a rebuild folds them into the catalogue."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from indexer.encoders.torch import Encoder
from tests.conftest import SPRINGFIELD_MA, WRITE_AUTH, WRITE_TOKEN, writing_client

FALAFEL = {
    "title": "Falafel corner",
    "text": "falafel wraps and hummus plates with rice and basil, open late",
    "category": "falafel",
    "tags": ["vegan", "late"],
    "lat": SPRINGFIELD_MA[0] + 0.002,
    "lon": SPRINGFIELD_MA[1] + 0.002,
    "popularity": 7,
}


@pytest.fixture
def root(shops_w2v_root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "shops"
    shutil.copytree(shops_w2v_root, copy)
    return copy


@pytest.fixture
def client(root: Path) -> Iterator[TestClient]:
    with writing_client({"shops": root}) as test_client:
        yield test_client


def _put(client: TestClient, item_id: str, body: dict, expect: int = 200) -> dict:
    response = client.put(f"/collections/shops/items/{item_id}", json=body)
    assert response.status_code == expect, response.text
    return response.json()


def _search(client: TestClient, query: str, **body: object) -> list[dict]:
    response = client.post("/search", json={"query": query, "k": 10, **body})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_a_written_item_is_found_by_every_branch_in_the_next_request(client: TestClient) -> None:
    assert not any(hit["id"] == "falafel-1" for hit in _search(client, "falafel hummus"))
    answer = _put(client, "falafel-1", FALAFEL)
    assert answer["accepted"] == 1 and answer["log_offset"] > 0
    for branch in ("bm25", "dense"):
        hits = _search(client, "falafel wraps hummus", branches=[branch])
        assert hits and hits[0]["id"] == "falafel-1", (branch, hits)
    # Word2Vec knows only the build's words: its own text (rice, basil, ...) finds the item first
    hits = _search(client, f"{FALAFEL['title']}\n{FALAFEL['text']}", branches=["w2v"])
    assert hits and hits[0]["id"] == "falafel-1", hits
    near = {"lat": SPRINGFIELD_MA[0], "lon": SPRINGFIELD_MA[1]}
    geo = _search(client, "falafel", location=near, branches=["geo"])
    assert [hit["id"] for hit in geo] == ["falafel-1"]
    nearest = client.post("/recommend", json={"location": near, "k": 5}).json()["results"]
    geo_ranks = {hit["id"]: hit["branches"].get("geo") for hit in nearest}
    assert geo_ranks["town-ma"] == 1 and geo_ranks["falafel-1"] == 2  # 300 m from the town hall
    filtered = _search(client, "open late", filters={"category": "falafel"})
    assert [hit["id"] for hit in filtered] == ["falafel-1"]
    assert [hit["id"] for hit in _search(client, "open late", filters={"tags": "vegan"})] == ["falafel-1"]
    stored = client.get("/collections/shops/items/falafel-1").json()["fields"]
    assert stored["title"] == "Falafel corner" and stored["tags"] == ["vegan", "late"]
    similar = client.get("/collections/shops/similar/falafel-1", params={"k": 3})
    assert similar.status_code == 200 and "falafel-1" not in [h["id"] for h in similar.json()["results"]]
    keywords = client.get("/collections/shops/keywords/category").json()
    assert {"value": "falafel", "count": 1} in keywords["values"]


def _bm25_scores(client: TestClient, query: str) -> dict[str, float]:
    response = client.post("/search", json={"query": query, "k": 20, "branches": ["bm25"], "explain": True})
    assert response.status_code == 200, response.text
    return {hit["id"]: hit["score"] for hit in response.json()["explain"]["bm25"]}


def test_an_item_written_unchanged_scores_as_its_built_row(client: TestClient) -> None:
    before = _bm25_scores(client, "coffee shop espresso pastries")
    stored = client.get("/collections/shops/items/coffee-ma-1").json()["fields"]
    fields = {name: stored[name] for name in ("title", "text", "category", "lat", "lon", "popularity")}
    _put(client, "coffee-ma-1", {**fields, "tags": stored.get("tags", [])})
    after = _bm25_scores(client, "coffee shop espresso pastries")
    assert len(before) >= 6 and after == pytest.approx(before, rel=1e-6)  # the version's statistics


def test_a_replacement_and_a_delete_leave_no_trace(client: TestClient) -> None:
    _put(client, "sushi-il-0", {"title": "Tea room", "text": "green tea and matcha", "category": "tea"})
    matches = _bm25_scores(client, "sushi")  # the built row's text is no longer matched
    assert "sushi-il-0" not in matches and "sushi-il-1" in matches
    assert [hit["id"] for hit in _search(client, "matcha tea")][:1] == ["sushi-il-0"]
    _put(client, "sushi-il-0", {"title": "Tea room", "text": "oolong only", "category": "tea"})
    assert _bm25_scores(client, "matcha") == {}  # the first write is replaced too
    assert client.delete("/collections/shops/items/sushi-il-0").json()["accepted"] == 1
    assert all(hit["id"] != "sushi-il-0" for hit in _search(client, "oolong tea"))
    assert client.get("/collections/shops/items/sushi-il-0").status_code == 404


def test_events_on_a_written_item_count(client: TestClient) -> None:
    _put(client, "falafel-1", FALAFEL)
    event = {"user_id": "eater", "item_id": "falafel-1", "timestamp": 1_700_100_000}
    assert client.post("/collections/shops/events", json={"events": [event]}).status_code == 200
    answer = client.post("/recommend", json={"user_id": "eater", "k": 5})
    assert answer.status_code == 200 and "falafel-1" not in [h["id"] for h in answer.json()["results"]]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"title": "x", "colour": "red"}, "body.colour", "not a field of this collection"),
        ({"title": "x", "lat": 95, "lon": 0}, "body.lat", "outside [-90, 90]"),
        ({"title": "x", "lat": 10}, "body.lon", "one coordinate is given without the other"),
        ({"title": ["not", "text"]}, "body.title", "must be text"),
        ({"title": "x", "popularity": "lots"}, "body.popularity", "not a finite number"),
    ],
)
def test_a_bad_item_is_refused_naming_the_field(
    client: TestClient, body: dict, field: str, message: str
) -> None:
    detail = _put(client, "bad-1", body, expect=422)
    assert field in str(detail) and message in str(detail), detail
    assert client.get("/collections/shops/items/bad-1").status_code == 404


def test_writes_need_the_admin_token(root: Path) -> None:
    with TestClient(create_app({"shops": root}, admin_token=WRITE_TOKEN)) as anonymous:
        assert anonymous.put("/collections/shops/items/x", json=FALAFEL).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert anonymous.put("/collections/shops/items/x", json=FALAFEL, headers=wrong).status_code == 403
    with TestClient(create_app({"shops": root})) as no_token:
        refused = no_token.put("/collections/shops/items/x", json=FALAFEL, headers=WRITE_AUTH)
        assert refused.status_code == 403 and "without an admin token" in refused.text


def test_a_restart_replays_and_a_rebuild_folds_the_written_items(root: Path, client: TestClient) -> None:
    from indexer.build import build_collection
    from indexer.config import BuildConfig

    _put(client, "falafel-1", FALAFEL)
    _put(client, "pizza-il-0", {"title": "Pizza al taglio", "text": "roman pizza by the slice"})
    with writing_client({"shops": root}) as restarted:
        assert [hit["id"] for hit in _search(restarted, "falafel")][:1] == ["falafel-1"]
        assert [hit["id"] for hit in _search(restarted, "roman slice")][:1] == ["pizza-il-0"]
    service = client.app.state.registry.get("shops")
    n_built = len(service.live.built)
    manifest = service.collection.manifest["params"]
    config = BuildConfig.model_validate(manifest["config"])
    build_collection(
        Path(manifest["corpus"]), root, config, behaviour=Path(manifest["behaviour_log"]), progress=False
    )
    with writing_client({"shops": root}) as rebuilt:
        fresh = rebuilt.app.state.registry.get("shops")
        assert fresh.collection.manifest["params"]["writes"]["written_items"] == 2
        assert len(fresh.collection) == n_built + 1 and not fresh.live.written  # folded, not replayed
        assert fresh.collection.ids.count("pizza-il-0") == 1
        assert [hit["id"] for hit in _search(rebuilt, "roman slice")][:1] == ["pizza-il-0"]
        assert rebuilt.get("/collections/shops/items/falafel-1").json()["fields"]["category"] == "falafel"


def test_the_learned_ranker_scores_a_written_item_like_a_built_one(
    root: Path, search_rankers: dict[str, Path]
) -> None:
    app = create_app(
        {"shops": root}, admin_token=WRITE_TOKEN, rankers={"shops": search_rankers["lambdamart"]}
    )
    with TestClient(app, headers=WRITE_AUTH) as client:
        stored = client.get("/collections/shops/items/coffee-ma-1").json()["fields"]
        copy = {name: stored[name] for name in ("title", "text", "category", "lat", "lon", "popularity")}
        _put(client, "coffee-copy", {**copy, "tags": stored.get("tags", [])})
        body = {"query": "espresso coffee pastries", "k": 50, "explain": True}
        answer = client.post("/search", json=body).json()
        assert answer["scorer"] == "lambdamart", answer["scorer"]
        features = {hit["id"]: hit["features"] for hit in answer["results"]}
        assert {"coffee-ma-1", "coffee-copy"} <= set(features)
        built, written = features["coffee-ma-1"], features["coffee-copy"]
        assert set(written) == set(built) and all(math.isfinite(v) for v in written.values())
        # Text features read the segment's BM25 with the version's statistics: equal. Vector features
        # differ a little (its vector came from the ONNX int8 query encoder, the built one's from the
        # build's fp32 model), and list features with them.
        text = [name for name in built if name.startswith("bm25")]
        assert text and {n: written[n] for n in text} == pytest.approx({n: built[n] for n in text})


def test_an_item_a_user_saw_stays_seen_after_it_is_rewritten(client: TestClient) -> None:
    event = {"user_id": "regular", "item_id": "coffee-ma-1", "timestamp": 1_700_100_000}
    assert client.post("/collections/shops/events", json={"events": [event]}).status_code == 200
    _put(client, "coffee-ma-1", {"title": "Coffee shop 1", "text": "espresso coffee and pastries, renovated"})
    answer = client.post("/recommend", json={"user_id": "regular", "k": 50}).json()["results"]
    assert "coffee-ma-1" not in [hit["id"] for hit in answer]  # its new row is as seen as the old one


def test_a_term_only_a_written_item_holds_weighs_as_it_scores(client: TestClient) -> None:
    """Query pruning (queries of more than 64 distinct terms keep the highest-idf ones) reads `idf`: a term
    only written items hold must not look like a term no item holds (idf 0), or pruning drops it."""
    _put(client, "falafel-1", FALAFEL)
    collection = client.app.state.registry.get("shops").collection
    field = collection.inverted.fields[0]
    (token,) = collection.query_terms("hummus")[field.analyzer]
    assert field.index.idf(token) > field.index.idf(collection.query_terms("shop")[field.analyzer][0]) > 0


def test_a_field_built_with_one_value_per_item_takes_one(tmp_path: Path, encoder: Encoder) -> None:
    """Keyword codes (what the ranker's keyword features read) exist only for fields with one value per item;
    a write must not turn such a field into a multi-valued one behind their back."""
    import json

    from indexer.build import build_collection
    from indexer.config import BuildConfig, apply_column_map
    from retrieval.errors import RequestError
    from retrieval.service import CollectionService

    rows = [
        {"id": f"i{n}", "title": f"item {n}", "tags": tag} for n, tag in enumerate(["red", "blue", "red"])
    ]
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = apply_column_map(BuildConfig(), ["text=title", "tags=tags"])
    config = config.model_copy(update={"word2vec": config.word2vec.model_copy(update={"enabled": False})})
    build_collection(items, tmp_path / "idx", config, encoder=encoder, progress=False)
    service = CollectionService.open(tmp_path / "idx")
    try:
        with pytest.raises(
            RequestError, match="gives 2 values; every item of this collection holds at most one"
        ):
            service.live.upsert("i9", {"title": "item 9", "tags": ["red", "blue"]})
        service.live.upsert("i9", {"title": "item 9", "tags": ["green"]})
        assert service.collection.keywords.fields["tags"].codes is not None
    finally:
        service.close()
