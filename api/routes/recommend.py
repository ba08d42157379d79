"""Recommendation routes: `POST /recommend` on the default collection and `/collections/{name}/recommend`."""

from __future__ import annotations

from fastapi import APIRouter

from api.answers import respond
from api.deps import AppMetrics, DefaultCollection, NamedCollection, RequestId
from api.schemas import RecommendRequest, RecommendResponse
from retrieval.service import CollectionService

router = APIRouter(tags=["recommend"])


def recommend_for(
    request: RecommendRequest, service: CollectionService, metrics: AppMetrics, request_id: str
) -> RecommendResponse:
    """Recall from behaviour (item-to-item, preferences), location and popularity; merge, score, best `k`."""
    query = service.recommendation(
        request.k,
        user_id=request.user_id,
        items=request.items,
        location=request.location.as_tuple() if request.location else None,
        radius_km=request.radius_km,
        filters=request.filters,
        exclude_seen=request.exclude_seen,
    )
    return respond(
        service, query, metrics, explain=request.explain, request_id=request_id, shape=RecommendResponse
    )


@router.post("/recommend", response_model=RecommendResponse, summary="Recommend from the default collection")
def recommend(
    request: RecommendRequest, service: DefaultCollection, metrics: AppMetrics, request_id: RequestId
) -> RecommendResponse:
    return recommend_for(request, service, metrics, request_id)


@router.post(
    "/collections/{name}/recommend", response_model=RecommendResponse, summary="Recommend from one collection"
)
def recommend_collection(
    request: RecommendRequest, service: NamedCollection, metrics: AppMetrics, request_id: RequestId
) -> RecommendResponse:
    return recommend_for(request, service, metrics, request_id)
