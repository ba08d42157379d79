"""Real-time writes: behaviour events, item upserts and deletes, answered once on disk
(`retrieval.live_writes`). Every write needs the admin bearer token (`api.routes.admin.require_token`); a
service started without one takes no writes (403)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from api.deps import NamedCollection
from api.routes.admin import require_token
from api.schemas import ITEM_BODY_EXAMPLE, EventsRequest, WriteResponse
from retrieval.errors import RequestError, UnknownItemError
from retrieval.live_writes import Event

router = APIRouter(prefix="/collections", tags=["writes"], dependencies=[Depends(require_token)])


@router.post("/{name}/events", response_model=WriteResponse, summary="Record behaviour events")
def record_events(name: str, request: EventsRequest, service: NamedCollection) -> WriteResponse:
    """Append the events to the collection's write log (fsynced before this answers), then apply them: the
    next `/recommend` or personal `/search` sees them. Every item must exist (a 422 names the first that
    does not); events older than the user's newest are kept in time order."""
    events = [Event(e.user_id, e.item_id, e.timestamp, e.weight) for e in request.events]
    written = service.live.record_events(events)
    return WriteResponse(
        collection=name, index_version=service.version, accepted=len(events), log_offset=written.end
    )


@router.put("/{name}/items/{item_id:path}", response_model=WriteResponse, summary="Add or replace an item")
def upsert_item(
    name: str,
    item_id: str,
    service: NamedCollection,
    fields: dict[str, Any] = Body(..., examples=[ITEM_BODY_EXAMPLE]),  # noqa: B008
) -> WriteResponse:
    """Add the item, or replace the one with this id, from a JSON object keyed by the collection's item
    fields: its text fields (a BEIR collection: `title`, `text`) and, where the collection has them,
    `category`, `tags`, `lat`/`lon`, `popularity` and its features by name, checked as a build checks an item
    row (a 422 names the first bad field). Logged and fsynced first; the next request finds it in every
    branch (BM25 scored with this version's statistics, `retrieval.delta`)."""
    if not item_id.strip():
        raise RequestError("item_id", "must not be blank")
    written = service.live.upsert(item_id, fields)
    return WriteResponse(collection=name, index_version=service.version, accepted=1, log_offset=written.end)


@router.delete("/{name}/items/{item_id:path}", response_model=WriteResponse, summary="Delete an item")
def delete_item(name: str, item_id: str, service: NamedCollection) -> WriteResponse:
    """Remove the item from every answer at once (logged and fsynced first); 404 for an id the collection
    never held."""
    if item_id not in service.collection.row_of:
        raise UnknownItemError(name, item_id)
    written = service.live.delete(item_id)
    return WriteResponse(
        collection=name,
        index_version=service.version,
        accepted=int(written is not None),
        log_offset=written.end if written is not None else service.live.applied,
    )
