"""Collections, operations and admin routes: listing, items, 404s, metrics, readiness and hot reload."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from indexer.artifact import rewrite_manifest
from indexer.versions import VersionStore

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def client(scifact_slice_root: Path) -> Iterator[TestClient]:
    with TestClient(create_app({"scifact": scifact_slice_root}, admin_token="")) as test_client:
        yield test_client


def test_collections_are_listed_with_version_and_size(client: TestClient, scifact_slice_root: Path) -> None:
    listed = client.get("/collections").json()
    assert [c["name"] for c in listed] == ["scifact"]
    assert listed[0]["documents"] == 200
    assert listed[0]["version"] == VersionStore(scifact_slice_root).current_name()
    assert {"bm25", "dense"} <= set(listed[0]["branches"])


def test_collection_search_matches_default_search(client: TestClient) -> None:
    body = {"query": "regulatory T cells in autoimmunity", "k": 5}
    named = client.post("/collections/scifact/search", json=body).json()
    default = client.post("/search", json=body).json()
    assert named["collection"] == default["collection"] == "scifact"
    assert [h["id"] for h in named["results"]] == [h["id"] for h in default["results"]]


def test_unknown_collection_and_item_are_404_with_a_message(client: TestClient) -> None:
    response = client.post("/collections/nope/search", json={"query": "x"})
    assert response.status_code == 404
    assert "unknown collection 'nope'" in response.json()["detail"]
    assert "scifact" in response.json()["detail"]
    missing = client.get("/collections/scifact/items/no-such-id")
    assert missing.status_code == 404
    assert "no item 'no-such-id'" in missing.json()["detail"]


def test_item_returns_stored_fields(client: TestClient) -> None:
    hit = client.post("/search", json={"query": "cancer", "k": 1}).json()["results"][0]
    item = client.get(f"/collections/scifact/items/{hit['id']}").json()
    assert item["fields"]["title"] == hit["title"]
    assert item["fields"]["text"]


def test_branch_subset_explain_and_unknown_branch(client: TestClient) -> None:
    only_bm25 = client.post(
        "/search", json={"query": "cancer risk", "k": 5, "branches": ["bm25"], "explain": True}
    )
    body = only_bm25.json()
    assert all(set(h["branches"]) == {"bm25"} for h in body["results"])
    assert set(body["explain"]) == {"bm25"}
    ranks = [c["rank"] for c in body["explain"]["bm25"]]
    assert ranks == list(range(1, len(ranks) + 1))
    bad = client.post("/search", json={"query": "cancer", "branches": ["telepathy"]})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "branches"
    assert bad.json()["detail"][0]["loc"] == ["body", "branches"]
    assert "telepathy" in bad.json()["detail"][0]["msg"]


def test_unknown_filter_field_is_422_naming_it(client: TestClient) -> None:
    response = client.post("/search", json={"query": "cancer", "filters": {"colour": "red"}})
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert (error["field"], error["type"]) == ("filters.colour", "value_error")
    assert error["loc"] == ["body", "filters", "colour"]


def test_metrics_count_requests_and_branches(client: TestClient) -> None:
    client.post("/search", json={"query": "protein folding", "k": 3})
    text = client.get("/metrics").text
    assert 'searchrec_requests_total{route="/search",status="200"}' in text
    assert 'searchrec_branch_seconds_count{branch="bm25",collection="scifact"}' in text
    assert 'searchrec_branch_candidates_count{branch="dense",collection="scifact"}' in text


def test_readyz_and_version(client: TestClient, scifact_slice_root: Path) -> None:
    assert client.get("/readyz").json()["ready"] is True
    versions = client.get("/version").json()
    assert versions["collections"] == {"scifact": VersionStore(scifact_slice_root).current_name()}


def test_admin_routes_are_off_without_a_token(client: TestClient) -> None:
    assert client.post("/admin/reload").status_code == 404


def _republish(root: Path) -> str:
    """Publish a copy of the current version as a new version (what a rebuild with no change produces)."""
    store = VersionStore(root)
    with store.build() as (name, staging):
        staging.rmdir()
        shutil.copytree(store.current(), staging)
        manifest = json.loads((staging / "manifest.json").read_text())
        rewrite_manifest(staging, {**manifest, "parts": {**manifest["parts"], "version": name}})
    return name


def test_hot_reload_under_load_fails_no_request(scifact_slice_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "scifact"
    shutil.copytree(scifact_slice_root, root)
    app = create_app({"scifact": root}, admin_token=TOKEN)
    failures: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    with TestClient(app) as client:
        assert client.post("/admin/reload").status_code == 401
        assert client.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 403

        def hammer() -> None:
            for _ in range(200):  # bounded: a few seconds at most
                if stop.is_set():
                    return
                response = client.post("/search", json={"query": "immune response to infection", "k": 5})
                if response.status_code != 200 or len(response.json()["results"]) != 5:
                    failures.append(response.text)
                else:
                    versions.add(response.json()["index_version"])

        workers = [threading.Thread(target=hammer) for _ in range(8)]
        for worker in workers:
            worker.start()
        published = []
        for _ in range(5):
            published.append(_republish(root))
            reloaded = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}).json()
            assert reloaded["versions"]["scifact"] == published[-1]
        stop.set()
        for worker in workers:
            worker.join()
        assert client.get("/version").json()["collections"]["scifact"] == published[-1]
    assert failures == []
    assert versions, "the load threads got answers"
