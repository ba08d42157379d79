"""The dense branch follows its encoder: English-only MiniLM skips mostly CJK queries, E5 serves them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from indexer.encoders.torch import Encoder
from retrieval.branches.dense import DenseSource
from retrieval.candidates import SearchQuery
from retrieval.collection import Collection


@pytest.fixture(scope="module")
def collections(
    scifact_slice_root: Path, xquad_slice_root: Path, encoder: Encoder
) -> Iterator[dict[bool, Collection]]:
    """Real collections by whether their encoder reads every language: MiniLM (SciFact), E5 (XQuAD-R zh)."""
    english, multilingual = (
        Collection.load(scifact_slice_root, encoder=encoder),
        Collection.load(xquad_slice_root),
    )
    yield {False: english, True: multilingual}
    english.close()
    multilingual.close()


@pytest.mark.parametrize(
    ("multilingual", "text", "runs"),
    [
        (False, "vitamin D and bone fractures", True),
        (False, "黑豹队的防守丢了多少分？", False),
        (False, "Carolina Panthers 黑豹队", True),  # mostly Latin letters
        (True, "黑豹队的防守丢了多少分？", True),
        (True, "ポケモンの作者は誰ですか", True),
        (True, "   ", False),
    ],
)
def test_the_dense_gate_follows_the_encoders_languages(
    collections: dict[bool, Collection], multilingual: bool, text: str, runs: bool
) -> None:
    collection = collections[multilingual]
    assert collection.encoder.multilingual is multilingual
    assert DenseSource(collection).enabled(SearchQuery(text)) is runs


@pytest.fixture(scope="module")
def client(xquad_slice_root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(xquad_slice_root)) as test_client:
        yield test_client


def test_a_chinese_query_gets_the_dense_branch_on_an_e5_collection(client: TestClient) -> None:
    # XQuAD-R zh: the answer to this question is sentence s0.
    response = client.post("/search", json={"query": "黑豹队的防守丢了多少分？", "k": 5, "explain": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "dense" in body["explain"] and body["degraded"] == []
    top = body["results"][0]
    assert top["id"] == "s0"
    assert top["branches"]["dense"] == 1 and top["branches"]["bm25"] == 1
