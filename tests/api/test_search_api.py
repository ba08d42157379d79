"""The REST API over a 200-document SciFact slice: the happy path and every 422 case."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from indexer.versions import VersionStore


@pytest.fixture(scope="module")
def client(scifact_slice_root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(scifact_slice_root)) as test_client:
        yield test_client


def test_search_returns_ranked_hits_with_provenance(client: TestClient, scifact_slice_root: Path) -> None:
    response = client.post("/search", json={"query": "vitamin D and bone fractures", "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["index_version"] == VersionStore(scifact_slice_root).current_name()
    hits = body["results"]
    assert len(hits) == 5
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert len({hit["id"] for hit in hits}) == 5
    for hit in hits:
        assert hit["branches"], "every hit names the branches that found it"
        assert set(hit["branches"]) <= {"bm25", "dense", "w2v"}
        assert all(rank >= 1 for rank in hit["branches"].values())
    assert body["scorer"] == "fusion"
    assert body["degraded"] == []


def test_exact_title_query_finds_its_document(client: TestClient) -> None:
    from indexer.beir import read_corpus
    from tests.conftest import SCIFACT

    doc = next(d for i, d in enumerate(read_corpus(SCIFACT)) if i == 17)
    body = client.post("/search", json={"query": doc.title, "k": 3}).json()
    assert body["results"][0]["id"] == doc.id
    assert body["results"][0]["title"] == doc.title
    assert {"bm25", "dense"} <= body["results"][0]["branches"].keys()


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"query": ""}, "query", "at least 1 character"),
        ({"query": "   "}, "query", "non-space"),
        ({"query": "x" * 2049}, "query", "at most 2048 characters"),
        ({"query": "cancer", "k": 0}, "k", "greater than or equal to 1"),
        ({"query": "cancer", "k": 1001}, "k", "less than or equal to 1000"),
        ({"query": "cancer", "k": "ten"}, "k", "valid integer"),
        ({"query": 42}, "query", "valid string"),
        ({"k": 3}, "query", "Field required"),
        ({"query": "cancer", "kk": 3}, "kk", "Extra inputs are not permitted"),
    ],
)
def test_bad_requests_name_the_field(client: TestClient, payload: dict, field: str, fragment: str) -> None:
    response = client.post("/search", json=payload)
    assert response.status_code == 422
    body = response.json()
    assert any(error["field"] == field and fragment in error["message"] for error in body["errors"]), body
    assert field in body["detail"]


def test_healthz_and_openapi(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["documents"] == 200
    schema = client.get("/openapi.json").json()
    request_schema = schema["components"]["schemas"]["SearchRequest"]
    assert request_schema["examples"][0]["query"]
    assert client.get("/docs").status_code == 200
