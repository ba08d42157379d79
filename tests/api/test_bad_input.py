"""Hand-written bad input: bodies that are not JSON objects, JSON Python reads but cannot write back, deep
nesting, huge numbers, odd path ids, unknown collections and routes, and a collection with nothing left in
it. Each gets a 4xx that names the field or parameter and what is allowed, never a 500."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from indexer.build import build_collection
from indexer.config import BuildConfig
from tests.conftest import SPRINGFIELD_IL, WRITE_AUTH, WRITE_TOKEN

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client(shops_root: Path, scifact_slice_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Copies of the shops collection (the default) and the SciFact slice, so writes stay here."""
    folder = tmp_path_factory.mktemp("bad-input")
    roots = {"shops": folder / "shops", "scifact": folder / "scifact"}
    shutil.copytree(shops_root, roots["shops"])
    shutil.copytree(scifact_slice_root, roots["scifact"])
    with TestClient(create_app(roots, admin_token=WRITE_TOKEN), headers=WRITE_AUTH) as test_client:
        yield test_client


def _error(response: Any, field: str) -> dict:
    """The 422's error on `field`; the response must be JSON a strict parser reads (no NaN, valid UTF-8)."""
    assert response.status_code == 422, response.text
    json.loads(response.content.decode("utf-8"), parse_constant=pytest.fail)
    errors = response.json()["detail"]
    matching = [error for error in errors if error["field"] == field]
    assert matching, errors
    return matching[0]


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({"content-type": "text/plain"}, "this request's is 'text/plain'"),
        ({"content-type": "application/x-www-form-urlencoded"}, "'application/x-www-form-urlencoded'"),
        ({"content-type": ""}, "this request has none"),
    ],
)
def test_json_sent_as_another_content_type_is_told_to_send_json(
    client: TestClient, headers: dict, says: str
) -> None:
    response = client.post("/search", content=b'{"query": "pizza"}', headers=headers)
    error = _error(response, "body")
    assert "must be a JSON object sent with Content-Type: application/json" in error["msg"]
    assert says in error["msg"]


def test_a_missing_body_and_a_body_that_is_no_object_are_named_body(client: TestClient) -> None:
    assert "has no body" in _error(client.post("/search", headers=JSON), "body")["msg"]
    assert "is a JSON array" in _error(client.post("/search", json=["pizza"]), "body")["msg"]
    assert "is a JSON string" in _error(client.post("/search", json="pizza"), "body")["msg"]


def test_malformed_json_names_the_body_and_where_it_broke(client: TestClient) -> None:
    error = _error(client.post("/search", content=b'{"query": "pizza"', headers=JSON), "body")
    assert error["loc"] == ["body", 17]  # FastAPI's location, for FastAPI clients
    assert "not valid JSON" in error["msg"] and "at character 17" in error["msg"]


def test_a_body_that_is_not_utf8_is_named_body(client: TestClient) -> None:
    error = _error(
        client.post("/search", content='{"query": "café"}'.encode("latin-1"), headers=JSON), "body"
    )
    assert "byte 0xe9 at position 14 is not UTF-8" in error["msg"]


# Python's JSON parser reads NaN, Infinity, 1e400 and lone surrogates; echoing them in the 422 once made the
# error response itself fail with a 500.
@pytest.mark.parametrize(
    ("route", "body", "field", "echoed"),
    [
        ("/search", '{"query": "pizza", "location": {"lat": NaN, "lon": 0}}', "location.lat", "NaN"),
        (
            "/search",
            '{"query": "pizza", "location": {"lat": 1, "lon": -Infinity}}',
            "location.lon",
            "-Infinity",
        ),
        ("/recommend", '{"location": {"lat": 1, "lon": 1}, "radius_km": 1e400}', "radius_km", "Infinity"),
        ("/search", '{"query": "pizza", "k": NaN}', "k", "NaN"),
        ("/search", '{"query": "\\ud800"}', "query", "\\ud800"),
        ("/recommend", '{"user_id": "\\udfff"}', "user_id", "\\udfff"),
        ("/search", '{"query": "pizza", "filters": {"category": NaN}}', "filters.category", "NaN"),
        (
            "/collections/shops/events",
            '{"events": [{"user_id": "u", "item_id": "pizza-il-0", "timestamp": 1, "weight": NaN}]}',
            "events.0.weight",
            "NaN",
        ),
    ],
)
def test_values_json_cannot_carry_back_are_a_422_naming_them(
    client: TestClient, route: str, body: str, field: str, echoed: str
) -> None:
    error = _error(client.post(route, content=body.encode(), headers=JSON), field)
    assert error["input"] == echoed


def test_a_lone_surrogate_in_a_filter_name_is_named_safely(client: TestClient) -> None:
    response = client.post("/search", content=b'{"query": "x", "filters": {"\\ud800": "a"}}', headers=JSON)
    assert "not a keyword field" in _error(response, "filters.\\ud800")["msg"]


def test_deeply_nested_filters_are_refused_with_a_bounded_echo(client: TestClient) -> None:
    nested = '{"query": "pizza", "filters": {"category": ' + "[" * 200 + "]" * 200 + "}}"
    response = client.post("/search", content=nested.encode(), headers=JSON)
    assert _error(response, "filters.category.0")["msg"] == "Input should be a valid string"
    assert len(response.content) < 2000  # the nesting is not sent back
    too_deep = '{"query": "pizza", "filters": {"category": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    response = client.post("/search", content=too_deep.encode(), headers=JSON)
    assert "nested too deeply" in _error(response, "body")["msg"]


def test_huge_numbers_are_refused_naming_k(client: TestClient) -> None:
    error = _error(client.post("/search", json={"query": "pizza", "k": 10**30}), "k")
    assert error["msg"] == "Input should be less than or equal to 1000"
    response = client.post("/search", content=b'{"query": "pizza", "k": ' + b"9" * 5000 + b"}", headers=JSON)
    assert "Exceeds the limit (4300 digits)" in _error(response, "body")["msg"]
    response = client.get("/collections/shops/similar/pizza-il-0", params={"k": "9" * 100})
    assert _error(response, "k")["msg"] == "Input should be less than or equal to 1000"


def test_a_one_megabyte_query_is_a_422_naming_query_and_a_larger_body_a_413(client: TestClient) -> None:
    response = client.post("/search", json={"query": "pizza " * 166_667})  # 1,000,002 characters
    error = _error(response, "query")
    assert "at most 32768 characters" in error["msg"] and "got 1000002" in error["msg"]
    assert len(error["input"]) <= 101 and len(response.content) < 2000
    response = client.post("/search", json={"query": "pizza " * 200_000})  # over the 1 MiB body limit
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert "at most 1048576 bytes" in detail and "`query` may be at most 32768 characters" in detail


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_path_ids_with_slashes_and_bytes_that_are_not_utf8_reach_the_item_route(
    client: TestClient, method: str
) -> None:
    slashed = client.request(method, "/collections/shops/items/a/b")
    assert slashed.status_code == 404 and slashed.json()["detail"] == "collection 'shops' has no item 'a/b'"
    raw = client.request(method, "/collections/shops/items/%FF%FE")
    assert raw.status_code == 404 and "has no item '\ufffd\ufffd'" in raw.json()["detail"]
    similar = client.get("/collections/shops/similar/a/b")
    assert similar.status_code == 404 and "has no item 'a/b'" in similar.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/collections/nope/search", {"query": "pizza"}),
        ("POST", "/collections/nope/recommend", {}),
        ("GET", "/collections/nope/items/pizza-il-0", None),
        ("DELETE", "/collections/nope/items/pizza-il-0", None),
        ("GET", "/collections/nope/similar/pizza-il-0", None),
        ("POST", "/collections/nope/events", {"events": [{"user_id": "u", "item_id": "x", "timestamp": 1}]}),
        ("GET", "/collections/%FF/items/x", None),
    ],
)
def test_unknown_collections_are_a_404_listing_the_served_ones(
    client: TestClient, method: str, path: str, body: dict | None
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == 404, response.text
    assert "unknown collection" in response.json()["detail"]
    assert "['shops', 'scifact']" in response.json()["detail"]


def test_unknown_routes_and_methods_say_what_exists(client: TestClient) -> None:
    missing = client.get("/collections/shops")
    assert missing.status_code == 404
    assert missing.json()["detail"].startswith("no route serves GET /collections/shops;")
    wrong = client.put("/search", json={"query": "pizza"})
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.json()["detail"] == "PUT is not allowed on /search; allowed: POST"


def test_the_build_refuses_an_empty_corpus_with_a_clear_error(tmp_path: Path) -> None:
    corpus = tmp_path / "items.jsonl"
    corpus.write_text("")
    with pytest.raises(ValueError, match="holds no documents"):
        build_collection(corpus, tmp_path / "index", BuildConfig(), progress=False)
    assert not (tmp_path / "index" / "CURRENT").exists()
    result = CliRunner().invoke(cli, ["build", "--corpus", str(corpus), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 2 and "holds no documents" in result.output


def test_a_collection_with_every_item_deleted_answers_empty(shops_root: Path, tmp_path: Path) -> None:
    """An empty corpus cannot be built, so the empty collection is the shops one after deleting all."""
    shutil.copytree(shops_root, tmp_path / "shops")
    app = create_app({"shops": tmp_path / "shops"}, admin_token=WRITE_TOKEN)
    with TestClient(app, headers=WRITE_AUTH) as empty:
        ids = list(empty.app.state.registry.get("shops").collection.ids)
        for item_id in ids:
            assert empty.delete(f"/collections/shops/items/{item_id}").json()["accepted"] == 1
        near = {"lat": SPRINGFIELD_IL[0], "lon": SPRINGFIELD_IL[1]}
        for route, body in [
            ("/search", {"query": "pizza", "k": 1000, "explain": True}),
            (
                "/search",
                {"query": "pizza", "location": near, "radius_km": 50, "filters": {"category": "pizza"}},
            ),
            ("/recommend", {"user_id": "user0", "explain": True}),
            ("/recommend", {"location": near}),
            ("/recommend", {}),
        ]:
            response = empty.post(route, json=body)
            assert response.status_code == 200, response.text
            assert response.json()["results"] == []
        assert empty.get(f"/collections/shops/similar/{ids[0]}").status_code == 404
        assert empty.get(f"/collections/shops/items/{ids[0]}").status_code == 404
        assert empty.delete(f"/collections/shops/items/{ids[0]}").json()["accepted"] == 0
        refused = empty.post("/recommend", json={"items": [ids[0]]})
        assert "unknown item id(s)" in _error(refused, "items")["msg"]
        event = {"events": [{"user_id": "u", "item_id": ids[0], "timestamp": 1}]}
        assert (
            "unknown item id"
            in _error(empty.post("/collections/shops/events", json=event), "events.0.item_id")["msg"]
        )
