"""Every recall branch and gate, filters, geography and recommendation on the tiny shops collection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import SPRINGFIELD_IL, SPRINGFIELD_MA


@pytest.fixture(scope="module")
def client(shops_root: Path) -> Iterator[TestClient]:
    with TestClient(create_app({"shops": shops_root})) as test_client:
        yield test_client


def _search(client: TestClient, **body: object) -> dict:
    response = client.post("/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _recommend(client: TestClient, **body: object) -> dict:
    response = client.post("/recommend", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(("location", "expected"), [(SPRINGFIELD_IL, "town-il"), (SPRINGFIELD_MA, "town-ma")])
def test_geo_branch_puts_the_nearest_namesake_first(
    client: TestClient, location: tuple, expected: str
) -> None:
    body = _search(client, query="Springfield", k=2, location={"lat": location[0] + 0.3, "lon": location[1]})
    assert body["results"][0]["id"] == expected
    assert body["results"][0]["branches"]["geo"] == 1


def test_text_free_branches_stay_out_of_search_unless_asked(client: TestClient) -> None:
    body = _search(client, query="pizza", k=10, user_id="user0", explain=True)
    assert set(body["explain"]) <= {"bm25", "dense"}
    asked = _search(
        client, query="pizza", k=10, user_id="user0", branches=["bm25", "item2item"], explain=True
    )
    assert set(asked["explain"]) == {"bm25", "item2item"}


def test_bm25_and_geo_branches_search_with_the_pruned_terms(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    inverted = client.app.state.registry.default.collection.inverted
    monkeypatch.setattr(inverted, "max_query_terms", 1)
    # pizza and sushi are in as many shops each: pizza's query tf of 2 keeps it, sushi goes.
    assert inverted.query_terms("pizza pizza sushi") == {"auto": ["pizza", "pizza"]}
    il = {"lat": SPRINGFIELD_IL[0], "lon": SPRINGFIELD_IL[1]}
    body = _search(client, query="pizza pizza sushi", k=20, location=il, explain=True)
    for branch in ("bm25", "geo"):
        found = {c["id"].split("-")[0] for c in body["explain"][branch]}
        assert found == {"pizza"}, (branch, found)


def test_keyword_filter_returns_k_matching_items(client: TestClient) -> None:
    # 6 coffee shops exist; asking for 6 must give all 6 even though "fresh fish" matches none of them.
    body = _search(client, query="fresh fish", k=6, filters={"category": "coffee"})
    assert len(body["results"]) == 6
    assert all(hit["id"].startswith("coffee-") for hit in body["results"])
    tagged = _search(client, query="shop", k=20, filters={"tags": ["italian", "japanese"]})
    assert {hit["id"].split("-")[0] for hit in tagged["results"]} == {"pizza", "sushi"}


def test_radius_keeps_only_nearby_items(client: TestClient) -> None:
    il = {"lat": SPRINGFIELD_IL[0], "lon": SPRINGFIELD_IL[1]}
    body = _search(client, query="shop", k=50, location=il, radius_km=50)
    assert body["results"], "shops near Springfield IL exist"
    assert all(
        hit["id"].endswith(("-il-0", "-il-1", "-il-2")) or hit["id"] == "town-il" for hit in body["results"]
    )
    no_location = client.post("/search", json={"query": "shop", "radius_km": 50})
    assert no_location.status_code == 422
    assert no_location.json()["detail"][0]["field"] == "radius_km"


def test_recommend_for_a_known_user_uses_behaviour_and_excludes_seen(client: TestClient) -> None:
    # user0 (even: pizza then coffee; 0 % 3 == 0: town "ma") has seen pizza-ma-0/1 and coffee-ma-0/1.
    body = _recommend(client, user_id="user0", k=5)
    ids = [hit["id"] for hit in body["results"]]
    assert not {"pizza-ma-0", "pizza-ma-1", "coffee-ma-0", "coffee-ma-1"} & set(ids)
    found_by = set().union(*(hit["branches"] for hit in body["results"]))
    assert {"item2item", "user_pref"} <= found_by
    assert ids[0].split("-")[0] in {"pizza", "coffee"}, ids
    seen_too = _recommend(client, user_id="user0", k=50, exclude_seen=False)
    assert "pizza-ma-0" in [hit["id"] for hit in seen_too["results"]]


def test_unknown_user_gets_cold_start_not_an_error(client: TestClient) -> None:
    body = _recommend(client, user_id="somebody-new", k=3)
    assert len(body["results"]) == 3
    assert all(set(hit["branches"]) == {"popular"} for hit in body["results"])
    # Time-decayed behaviour popularity: four users each end their sequence (newest event) on coffee-il-1 or
    # books-il-1; no other item has more events, nor more recent ones.
    assert {hit["id"] for hit in body["results"][:2]} == {"coffee-il-1", "books-il-1"}


def test_recommend_from_items_and_location(client: TestClient) -> None:
    body = _recommend(
        client, items=["sushi-il-0"], k=5, location={"lat": SPRINGFIELD_IL[0], "lon": SPRINGFIELD_IL[1]}
    )
    found_by = set().union(*(hit["branches"] for hit in body["results"]))
    assert {"item2item", "geo", "popular"} <= found_by
    assert "sushi-il-0" not in [hit["id"] for hit in body["results"]]
    missing = client.post("/recommend", json={"items": ["sushi-il-0", "nope"]})
    assert missing.status_code == 422  # a bad value in the body, not a missing resource
    error = missing.json()["detail"][0]
    assert error["field"] == "items" and "'nope'" in error["msg"]


def test_similar_items(client: TestClient) -> None:
    response = client.get(
        "/collections/shops/similar/pizza-il-0", params={"k": 3}, headers={"X-Request-ID": "sim-1"}
    )
    assert response.status_code == 200
    body = response.json()  # the search envelope
    assert (body["request_id"], body["collection"], body["scorer"]) == ("sim-1", "shops", "dense")
    assert body["index_version"] and body["took_ms"] >= 0
    ids = [hit["id"] for hit in body["results"]]
    assert "pizza-il-0" not in ids and len(ids) == 3
    assert all(i.startswith("pizza-") for i in ids), ids
    assert client.get("/collections/shops/similar/nope").status_code == 404


def test_covisit_recommends_what_the_same_users_consumed(client: TestClient) -> None:
    # Users 1, 5, 7 and 11 consumed sushi-il-0, sushi-il-1, books-il-0 and books-il-1, and nothing else.
    body = _recommend(client, items=["sushi-il-0"], k=3)
    assert {hit["id"] for hit in body["results"]} == {"sushi-il-1", "books-il-0", "books-il-1"}
    assert all("covisit" in hit["branches"] for hit in body["results"])


def test_keyword_values_are_counted_and_an_unknown_field_is_named(client: TestClient) -> None:
    body = client.get("/collections/shops/keywords/category").json()
    counts = {v["value"]: v["count"] for v in body["values"]}
    assert counts == {"books": 6, "coffee": 6, "pizza": 6, "sushi": 6, "town": 2} and body["distinct"] == 5
    assert [v["value"] for v in body["values"]][:2] == ["books", "coffee"]  # most items first, then by value
    assert len(client.get("/collections/shops/keywords/category", params={"limit": 2}).json()["values"]) == 2
    missing = client.get("/collections/shops/keywords/colour")
    assert missing.status_code == 404 and "category" in missing.json()["detail"]
