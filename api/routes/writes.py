"""Real-time writes: behaviour events and item deletes, answered once on disk (`retrieval.live_writes`)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import NamedCollection
from api.schemas import EventsRequest, WriteResponse
from retrieval.errors import UnknownItemError
from retrieval.live_writes import Event

router = APIRouter(prefix="/collections", tags=["writes"])


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
