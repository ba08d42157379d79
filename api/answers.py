"""Ranked answers in their response models: search, recommend and similar share one envelope."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from api.deps import AppMetrics
from api.schemas import BranchCandidate, RankedResponse, SearchHit
from retrieval.candidates import SearchQuery
from retrieval.service import CollectionService, SearchAnswer

Ranked = TypeVar("Ranked", bound=RankedResponse)


def respond(
    service: CollectionService,
    query: SearchQuery,
    metrics: AppMetrics,
    *,
    explain: bool,
    request_id: str,
    shape: type[Ranked],
) -> Ranked:
    """Run `query`, record its branch metrics, and shape the answer as `shape` (shared by search and
    recommend)."""
    result = service.search(dataclasses.replace(query, request_id=request_id), explain=explain)
    metrics.observe_answer(service.collection.name, result)
    return envelope(shape, service, result, request_id)


def envelope(
    shape: type[Ranked], service: CollectionService, result: SearchAnswer, request_id: str
) -> Ranked:
    """`result` in the response model `shape` (search, recommend and similar share the envelope)."""
    return shape(
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
