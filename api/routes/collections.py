"""Collection routes: list them, fetch one item's stored fields, find items similar to one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import NamedCollection, Registry
from api.schemas import MAX_K, CollectionInfo, SearchHit

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


@router.get("/{name}/items/{item_id}", summary="One item's stored fields")
def get_item(name: str, item_id: str, service: NamedCollection) -> dict:
    stored = service.item(item_id)
    return {"id": item_id, "collection": name, "index_version": service.version, "fields": stored}


@router.get("/{name}/similar/{item_id}", response_model=list[SearchHit], summary="Items similar to one item")
def similar(
    name: str,
    item_id: str,
    service: NamedCollection,
    k: Annotated[int, Query(ge=1, le=MAX_K, description=f"How many, 1 to {MAX_K}.")] = 10,
) -> list[SearchHit]:
    hits = service.similar(item_id, k)
    return [SearchHit(id=h.id, score=h.score, title=h.title, branches=h.branches) for h in hits]
