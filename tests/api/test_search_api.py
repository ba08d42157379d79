"""The REST API over a 200-document SciFact slice: the happy path and every 422 case."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.schemas import DEFAULT_MAX_QUERY_CHARS
from indexer.fields import MAX_QUERY_TERMS
from indexer.versions import VersionStore
from tests.conftest import SCIFACT


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


def scifact_documents() -> list[dict]:
    """SciFact's corpus records, in file order."""
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def test_exact_title_query_finds_its_document(client: TestClient) -> None:
    doc = scifact_documents()[17]
    body = client.post("/search", json={"query": doc["title"], "k": 3}).json()
    assert body["results"][0]["id"] == doc["_id"]
    assert body["results"][0]["title"] == doc["title"]
    assert {"bm25", "dense"} <= body["results"][0]["branches"].keys()


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"query": ""}, "query", "at least 1 character"),
        ({"query": "   "}, "query", "non-space"),
        ({"query": "x" * 32_769}, "query", "at most 32768 characters"),
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
    # FastAPI's shape (a list of errors with loc and msg), each also naming the request field.
    assert any(error["field"] == field and fragment in error["msg"] for error in body["detail"]), body
    assert all({"type", "loc", "msg", "input", "field"} <= set(error) for error in body["detail"]), body


def test_healthz_and_openapi(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["documents"] == 200
    schema = client.get("/openapi.json").json()
    request_schema = schema["components"]["schemas"]["SearchRequest"]
    assert request_schema["examples"][0]["query"]
    described = request_schema["properties"]["query"]["description"]
    assert f"{MAX_QUERY_TERMS} most informative terms" in described  # the schema states the constant
    assert (
        str(DEFAULT_MAX_QUERY_CHARS) in described and "maxLength" not in request_schema["properties"]["query"]
    )
    assert client.get("/docs").status_code == 200


def document_query(chars: int) -> str:
    """A pasted document: SciFact abstracts (from row 100 on) joined and cut to `chars` characters."""
    parts, total = [], 0
    for doc in scifact_documents()[100:]:
        if total < chars:
            parts.append(doc["text"])
            total += len(doc["text"]) + 1
    return " ".join(parts)[:chars]


def test_a_20000_character_query_is_answered_by_every_branch(client: TestClient) -> None:
    query = document_query(20_000)
    assert len(query) == 20_000
    collection = client.app.state.registry.default.collection
    (terms,) = collection.query_terms(query).values()  # one field, one analyzer
    assert len(set(terms)) == MAX_QUERY_TERMS < len(set(*collection.inverted.analyze(query).values()))
    response = client.post("/search", json={"query": query, "k": 10, "explain": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["results"]) == 10 and body["degraded"] == []
    # BM25 on the pruned terms, the transformer on the first 256 tokens, Word2Vec on every word.
    assert collection.text_vectors is not None
    assert {"bm25", "dense", "w2v"} <= {name for name, found in body["explain"].items() if found}


def test_the_query_limit_is_the_services_setting(client: TestClient) -> None:
    registry = client.app.state.registry  # an opened registry: the small app loads nothing of its own
    with TestClient(create_app([], registry=registry, max_query_chars=100)) as small:
        assert small.post("/search", json={"query": "b" * 100, "k": 1}).status_code == 200
        name = registry.default.collection.name
        response = small.post(f"/collections/{name}/search", json={"query": "b" * 101})
        assert response.status_code == 422
        error = response.json()["detail"][0]
        assert error["field"] == "query" and error["loc"] == ["body", "query"]
        assert "at most 100 characters" in error["msg"]
        assert "got 101" in error["msg"] and len(error["input"]) <= 101  # not echoed whole
    assert client.post("/search", json={"query": "b" * DEFAULT_MAX_QUERY_CHARS}).status_code == 200
    with pytest.raises(ValueError, match="max_query_chars must be a positive number of characters, got 0"):
        create_app([], registry=registry, max_query_chars=0)
