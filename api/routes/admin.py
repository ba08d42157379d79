"""Admin routes, mounted only when an admin token is set (`SEARCHREC_ADMIN_TOKEN`, or `create_app`'s
`admin_token`): hot reload of published versions. Without a token they do not exist (404).

Every admin request carries ``Authorization: Bearer <token>``. Without one (or with another scheme) it gets a
401 with ``WWW-Authenticate: Bearer``; with a wrong token, a 403. The token is compared in constant time
(`hmac.compare_digest` on SHA-256 digests, so not even its length shows in the timing), and is never logged
or echoed: it is no header parameter a 422 could repeat.

With several worker processes the request reaches one of them; it reloads, then tells the others through
the reload broadcast (`api.reload_broadcast`) and answers once every worker has switched.

A newly published version that cannot be opened (a file fails its checksum, an unreadable manifest, a
refused ranker) is refused: the collection keeps serving its previous version, the other collections still
switch, and the answer is a 500 naming the collection, the refused version and the file
(`retrieval.registry.ReloadFailedError`; with several workers, the broadcast's `ReloadIncompleteError`
naming each worker's failure).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import Broadcast, Registry
from api.schemas import ReloadRefused, ReloadResult, WorkerVersions
from retrieval.registry import ReloadFailedError

TOKEN_ENV = "SEARCHREC_ADMIN_TOKEN"

bearer = HTTPBearer(auto_error=False, description="The admin token the service was started with.")


def token_matches(given: str, expected: str) -> bool:
    """Whether `given` is `expected`, in time that depends on neither (digests of equal length)."""
    digest = hashlib.sha256
    return hmac.compare_digest(digest(given.encode()).digest(), digest(expected.encode()).digest())


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """401 without a bearer token, 403 with a wrong one, or when the service has none (its writes are off)."""
    expected = request.app.state.admin_token
    if expected is None:
        raise HTTPException(
            status_code=403,
            detail=f"this service was started without an admin token ({TOKEN_ENV}): it takes no writes",
        )
    if credentials is None:
        raise HTTPException(
            status_code=401,
            detail="admin routes need 'Authorization: Bearer <token>' with the service's admin token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not token_matches(credentials.credentials, expected):
        raise HTTPException(
            status_code=403, detail=f"the bearer token is not this service's admin token ({TOKEN_ENV})"
        )


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
