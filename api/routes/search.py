"""Search routes: `POST /search` on the default collection and `POST /collections/{name}/search`."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from api.deps import AppMetrics, DefaultCollection, MaxQueryChars, NamedCollection, RequestId
from api.schemas import BranchCandidate, SearchHit, SearchRequest, SearchResponse
from retrieval.candidates import SearchQuery
from retrieval.service import CollectionService

router = APIRouter(tags=["search"])


# A refused query is echoed up to this many characters (it may be a whole document).
ECHO_CHARS = 100


def check_query(query: str, max_chars: int) -> None:
    """422 naming `query` when it is only white space or longer than the service's `max_chars`."""
    if len(query) > max_chars:
        echo = query[:ECHO_CHARS] + "…"
        message = (
            f"String should have at most {max_chars} characters (this service's limit, "
            f"serve --max-query-chars); got {len(query)}"
        )
        raise RequestValidationError([{"loc": ("body", "query"), "msg": message, "input": echo}])
    if not query.strip():
        raise RequestValidationError(
            [{"loc": ("body", "query"), "msg": "must contain a non-space character", "input": query}]
        )


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
    return respond(service, query, metrics, explain=request.explain, request_id=request_id)


def respond(
    service: CollectionService, query: SearchQuery, metrics: AppMetrics, *, explain: bool, request_id: str
) -> SearchResponse:
    """Run `query`, record its branch metrics, and shape the answer (shared by search and recommend)."""
    result = service.search(dataclasses.replace(query, request_id=request_id), explain=explain)
    metrics.observe_answer(service.collection.name, result)
    return SearchResponse(
        request_id=request_id,
        results=[
            SearchHit(id=h.id, score=h.score, title=h.title, branches=h.branches, features=h.features)
            for h in result.hits
        ],
        collection=service.collection.name,
        index_version=result.version,
        scorer=result.scorer,
        scorer_version=result.scorer_version,
        scorer_reason=result.scorer_reason,
        degraded=result.degraded,
        took_ms=round(result.took_ms, 3),
        explain=None
        if result.explain is None
        else {name: [BranchCandidate(**c) for c in found] for name, found in result.explain.items()},
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
