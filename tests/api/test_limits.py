"""The service's limits on what one request may ask: body size (413 naming the limit, whether the size is
declared or streamed), filter count, values per filter and value length (422 naming `filters`), and `k`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.body_limit import DEFAULT_MAX_BODY_BYTES
from api.cli.serve import _app
from api.schemas import DEFAULT_MAX_QUERY_CHARS, MAX_FILTER_VALUE_CHARS, MAX_FILTER_VALUES, MAX_FILTERS
from api.workers import ServeSettings


@pytest.fixture(scope="module")
def client(shops_root: Path) -> Iterator[TestClient]:
    """The shops collection as built (these tests only read)."""
    with TestClient(create_app({"shops": shops_root})) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def small(client: TestClient) -> Iterator[TestClient]:
    """An app over the same opened collection that accepts bodies of at most 300 bytes."""
    with TestClient(create_app([], registry=client.app.state.registry, max_body_bytes=300)) as test_client:
        yield test_client


def _field_error(response: Any, field: str) -> dict:
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(error["field"] == field for error in errors), errors
    return next(error for error in errors if error["field"] == field)


def test_the_default_body_limit_leaves_room_for_the_longest_query() -> None:
    # The longest query the default allows, written as JSON escapes of characters beyond the BMP (12 bytes
    # each in the worst case), still fits.
    assert DEFAULT_MAX_BODY_BYTES == 1 << 20 > 12 * DEFAULT_MAX_QUERY_CHARS + 1000


def test_a_declared_body_over_the_limit_is_a_413_naming_it(small: TestClient) -> None:
    assert small.post("/search", json={"query": "pizza " * 40}).status_code == 200
    response = small.post("/search", json={"query": "pizza " * 60})
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert detail.startswith(
        "the request body may be at most 300 bytes (serve --max-body-bytes); this one is"
    )
    assert f"`query` may be at most {DEFAULT_MAX_QUERY_CHARS} characters" in detail
    events = small.post("/collections/shops/events", json={"events": [{"user_id": "u" * 300}]})
    assert events.status_code == 413 and "query" not in events.json()["detail"]  # the hint is for search
    assert response.headers["x-worker"]  # answered inside the app's middleware, like any answer


def test_a_streamed_body_over_the_limit_is_a_413_too(small: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked
        yield b'{"query": "'
        for _ in range(10):
            yield b"pizza " * 10
        yield b'"}'

    response = small.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert (
        "at most 300 bytes" in response.json()["detail"] and "longer than that" in response.json()["detail"]
    )

    def short() -> Iterator[bytes]:
        yield b'{"query": '
        yield b'"pizza"}'

    assert (
        small.post("/search", content=short(), headers={"content-type": "application/json"}).status_code
        == 200
    )


def test_a_body_on_a_route_that_takes_none_is_limited_too(small: TestClient) -> None:
    assert small.request("GET", "/healthz", content=b"x" * 301).status_code == 413
    assert small.request("GET", "/healthz", content=b"x" * 300).status_code == 200


def test_the_body_limit_is_a_setting_of_create_app_and_serve(client: TestClient) -> None:
    registry = client.app.state.registry
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_body_bytes must be a positive number of bytes"):
            create_app([], registry=registry, max_body_bytes=bad)  # type: ignore[arg-type]
    settings = ServeSettings(indexes={"shops": Path("unused")}, max_body_bytes=500)
    with TestClient(_app(settings, registry=registry)) as served:
        assert served.post("/search", json={"query": "pizza " * 100}).status_code == 413
    assert ServeSettings(indexes={}).max_body_bytes == DEFAULT_MAX_BODY_BYTES


def test_filters_are_limited_in_count_values_and_length(client: TestClient) -> None:
    fields = {f"field{i}": "x" for i in range(MAX_FILTERS + 1)}
    error = _field_error(client.post("/search", json={"query": "pizza", "filters": fields}), "filters")
    assert error["msg"].startswith(f"Dictionary should have at most {MAX_FILTERS} items")
    values = ["pizza"] * (MAX_FILTER_VALUES + 1)
    response = client.post("/search", json={"query": "pizza", "filters": {"category": values}})
    error = _field_error(response, "filters.category")
    assert error["msg"].startswith(f"List should have at most {MAX_FILTER_VALUES} items")
    long_value = "p" * (MAX_FILTER_VALUE_CHARS + 1)
    response = client.post("/recommend", json={"filters": {"category": long_value}})
    error = _field_error(response, "filters.category.0")
    assert error["msg"] == f"String should have at most {MAX_FILTER_VALUE_CHARS} characters"
    wrong = client.post("/search", json={"query": "pizza", "filters": {"category": 5}})
    assert _field_error(wrong, "filters.category")["msg"] == "must be a string or a list of strings"


def test_filters_at_the_limits_are_answered(client: TestClient) -> None:
    longest = "p" * MAX_FILTER_VALUE_CHARS
    at_limit = {"category": ["pizza", longest, *(f"kind{i}" for i in range(MAX_FILTER_VALUES - 2))]}
    response = client.post("/search", json={"query": "pizza", "filters": at_limit, "k": 3})
    assert response.status_code == 200, response.text
    assert {hit["id"].split("-")[0] for hit in response.json()["results"]} == {"pizza"}
    one = client.post("/search", json={"query": "pizza", "filters": {"category": "pizza"}, "k": 3}).json()
    assert [hit["id"] for hit in one["results"]] == [hit["id"] for hit in response.json()["results"]]


def test_the_schema_states_the_filter_limits(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["SearchRequest"]
    filters = schema["properties"]["filters"]
    assert filters["maxProperties"] == MAX_FILTERS
    one, many = filters["additionalProperties"]["anyOf"]
    assert one == {"type": "string", "maxLength": MAX_FILTER_VALUE_CHARS}
    assert many["maxItems"] == MAX_FILTER_VALUES and many["items"]["maxLength"] == MAX_FILTER_VALUE_CHARS


@pytest.mark.parametrize(
    ("k", "fragment"), [(0, "greater than or equal to 1"), (1001, "less than or equal to 1000")]
)
def test_k_is_limited(client: TestClient, k: int, fragment: str) -> None:
    assert fragment in _field_error(client.post("/recommend", json={"k": k}), "k")["msg"]
    assert client.post("/recommend", json={"k": 1000}).status_code == 200
