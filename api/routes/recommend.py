"""Recommendation routes: `POST /recommend` on the default collection and `/collections/{name}/recommend`."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AppMetrics, DefaultCollection, NamedCollection
from api.routes.search import respond
from api.schemas import RecommendRequest, SearchResponse
from retrieval.service import CollectionService

router = APIRouter(tags=["recommend"])


def recommend_for(
    request: RecommendRequest, service: CollectionService, metrics: AppMetrics
) -> SearchResponse:
    """Recall from behaviour (item-to-item, preferences), location and popularity; merge, score, best `k`."""
    query = service.recommendation(
        request.k,
        user_id=request.user_id,
        items=request.items,
        location=(request.location.lat, request.location.lon) if request.location else None,
        radius_km=request.radius_km,
        filters=request.filters,
        exclude_seen=request.exclude_seen,
    )
    return respond(service, query, metrics, explain=False)


@router.post("/recommend", response_model=SearchResponse, summary="Recommend from the default collection")
def recommend(request: RecommendRequest, service: DefaultCollection, metrics: AppMetrics) -> SearchResponse:
    return recommend_for(request, service, metrics)


@router.post(
    "/collections/{name}/recommend", response_model=SearchResponse, summary="Recommend from one collection"
)
def recommend_collection(
    request: RecommendRequest, service: NamedCollection, metrics: AppMetrics
) -> SearchResponse:
    return recommend_for(request, service, metrics)
