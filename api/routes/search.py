"""Search routes: `POST /search` on the default collection and `POST /collections/{name}/search`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from api.answers import respond
from api.deps import AppMetrics, DefaultCollection, MaxQueryChars, NamedCollection, RequestId
from api.schemas import SearchRequest, SearchResponse
from retrieval.service import CollectionService

router = APIRouter(tags=["search"])


# A refused query is echoed up to this many characters (it may be a whole document).
ECHO_CHARS = 100


def check_query(query: str, max_chars: int) -> None:
    """422 naming `query` when it is longer than the service's `max_chars` (a setting of the running
    service, so not in the schema; the schema refuses a blank query)."""
    if len(query) > max_chars:
        echo = query[:ECHO_CHARS] + "…"
        message = (
            f"String should have at most {max_chars} characters (this service's limit, "
            f"serve --max-query-chars); got {len(query)}"
        )
        error = {"type": "string_too_long", "loc": ("body", "query"), "msg": message, "input": echo}
        raise RequestValidationError([error])


def answer(
    request: SearchRequest, service: CollectionService, metrics: AppMetrics, request_id: str, max_chars: int
) -> SearchResponse:
    """Recall with the selected branches, merge with provenance, score, and return the best `k`."""
    check_query(request.query, max_chars)
    query = service.query(
        request.query,
        request.k,
        filters=request.filters,
        location=request.location.as_tuple() if request.location else None,
        radius_km=request.radius_km,
        user_id=request.user_id,
        branches=request.branches,
    )
    return respond(
        service, query, metrics, explain=request.explain, request_id=request_id, shape=SearchResponse
    )


@router.post("/search", response_model=SearchResponse, summary="Search the default collection")
def search(
    request: SearchRequest,
    service: DefaultCollection,
    metrics: AppMetrics,
    request_id: RequestId,
    max_chars: MaxQueryChars,
) -> SearchResponse:
    return answer(request, service, metrics, request_id, max_chars)


@router.post("/collections/{name}/search", response_model=SearchResponse, summary="Search one collection")
def search_collection(
    request: SearchRequest,
    service: NamedCollection,
    metrics: AppMetrics,
    request_id: RequestId,
    max_chars: MaxQueryChars,
) -> SearchResponse:
    return answer(request, service, metrics, request_id, max_chars)
