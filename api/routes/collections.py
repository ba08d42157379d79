"""Collection routes: list them, fetch one item's stored fields, find items similar to one.

Item ids are external ids as the corpus wrote them; they may hold ``/`` (``{item_id:path}``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.answers import envelope
from api.deps import NamedCollection, Registry, RequestId
from api.schemas import MAX_K, CollectionInfo, SimilarResponse

router = APIRouter(prefix="/collections", tags=["collections"])


@router.get("", response_model=list[CollectionInfo], summary="Collections served, with version and size")
def list_collections(registry: Registry) -> list[CollectionInfo]:
    return [
        CollectionInfo(
            name=name,
            version=service.version,
            documents=len(service.collection),
            branches=[source.name for source in service.pipeline.sources],
            keyword_fields=service.collection.keyword_fields,
        )
        for name, service in registry.items()
    ]


@router.get("/{name}/items/{item_id:path}", summary="One item's stored fields")
def get_item(name: str, item_id: str, service: NamedCollection) -> dict:
    stored = service.item(item_id)
    return {"id": item_id, "collection": name, "index_version": service.version, "fields": stored}


@router.get(
    "/{name}/similar/{item_id:path}", response_model=SimilarResponse, summary="Items similar to one item"
)
def similar(
    name: str,
    item_id: str,
    service: NamedCollection,
    request_id: RequestId,
    k: Annotated[int, Query(ge=1, le=MAX_K, description=f"How many, 1 to {MAX_K}.")] = 10,
) -> SimilarResponse:
    return envelope(SimilarResponse, service, service.similar(item_id, k), request_id)
