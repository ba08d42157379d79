"""`GET /healthz`: the process is up and an index is loaded."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import DefaultCollection
from api.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness and the version being served")
def healthz(service: DefaultCollection) -> Health:
    return Health(status="ok", index_version=service.version, documents=len(service.collection))
