"""Admin routes, mounted only when `SEARCHREC_ADMIN_TOKEN` is set: hot reload of published versions.

With several worker processes the request reaches one of them; it reloads, then tells the others through
the reload broadcast (`api.reload_broadcast`) and answers once every worker has switched.

A newly published version that cannot be opened (a file fails its checksum, an unreadable manifest, a
refused ranker) is refused: the collection keeps serving its previous version, the other collections still
switch, and the answer is a 500 naming the collection, the refused version and the file
(`retrieval.registry.ReloadFailedError`; with several workers, the broadcast's `ReloadIncompleteError`
naming each worker's failure).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request

from api.deps import Broadcast, Registry
from api.schemas import ReloadRefused, ReloadResult, WorkerVersions
from retrieval.registry import ReloadFailedError

TOKEN_ENV = "SEARCHREC_ADMIN_TOKEN"


def require_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    expected = f"Bearer {request.app.state.admin_token}"
    if authorization is None or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="admin routes need 'Authorization: Bearer <token>'")


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_token)])


@router.post(
    "/reload",
    response_model=ReloadResult,
    summary="Serve newly published versions",
    responses={500: {"model": ReloadRefused, "description": "A published version was refused."}},
)
def reload(
    registry: Registry,
    broadcast: Broadcast,
    collection: Annotated[str | None, Query(description="Reload only this collection.")] = None,
) -> ReloadResult:
    refused: ReloadFailedError | None = None
    try:
        switched = registry.reload(collection)
    except ReloadFailedError as error:  # the other workers must still switch what did switch here
        refused, switched = error, error.switched
    workers = broadcast.wait(broadcast.announce(collection)) if broadcast is not None else []
    if refused is not None:
        raise refused
    return ReloadResult(
        switched=[
            {
                "collection": r.name,
                "from": r.old_version,
                "to": r.new_version,
                "ranker_from": r.old_ranker,
                "ranker_to": r.new_ranker,
            }
            for r in switched
        ],
        versions={name: service.version for name, service in registry.items()},
        workers=[WorkerVersions(pid=state.pid, versions=state.versions) for state in workers],
    )
