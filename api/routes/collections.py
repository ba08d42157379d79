"""Collection routes: list them, a keyword field's common values, one item's stored fields, similar items.

Item ids are external ids as the corpus wrote them; they may hold ``/`` (``{item_id:path}``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.answers import envelope
from api.deps import NamedCollection, Registry, RequestId
from api.schemas import MAX_K, CollectionInfo, KeywordValue, KeywordValues, SimilarResponse

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


@router.get(
    "/{name}/keywords/{field}", response_model=KeywordValues, summary="A keyword field's most common values"
)
def keyword_values(
    name: str,
    field: str,
    service: NamedCollection,
    limit: Annotated[int, Query(ge=1, le=MAX_K, description=f"How many values, 1 to {MAX_K}.")] = 50,
) -> KeywordValues:
    """The values of keyword field `field` held by the most items, with how many hold each (ties: value
    order): what a filter on that field can ask for."""
    fields = service.collection.keyword_fields
    if field not in fields:
        raise HTTPException(
            404, f"no keyword field {field!r} in collection {name!r}; it has {fields or 'none'}"
        )
    counts = service.collection.keywords.fields[field].counts()
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:limit]
    return KeywordValues(
        collection=name,
        field=field,
        distinct=len(counts),
        values=[KeywordValue(value=value, count=count) for value, count in ranked],
    )


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
