"""`POST /search`: hybrid search over the default collection."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from api.deps import DefaultCollection
from api.schemas import SearchHit, SearchRequest, SearchResponse

router = APIRouter(tags=["search"])


@router.post("/search", response_model=SearchResponse, summary="Search the default collection")
def search(request: SearchRequest, service: DefaultCollection) -> SearchResponse:
    """Recall with every branch, merge with provenance, score, and return the best `k`."""
    if not request.query.strip():
        raise RequestValidationError(
            [{"loc": ("body", "query"), "msg": "must contain a non-space character", "input": request.query}]
        )
    answer = service.search(request.query, request.k)
    return SearchResponse(
        results=[SearchHit(id=h.id, score=h.score, title=h.title, branches=h.branches) for h in answer.hits],
        index_version=answer.version,
        scorer=answer.scorer,
        degraded=answer.degraded,
        took_ms=round(answer.took_ms, 3),
    )
