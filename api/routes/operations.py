"""Operations routes: liveness, readiness, versions and Prometheus metrics."""

from __future__ import annotations

from importlib import metadata

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.deps import AppMetrics, DefaultCollection, Registry
from api.schemas import Health, VersionInfo

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness and the default collection's version")
def healthz(service: DefaultCollection) -> Health:
    return Health(status="ok", index_version=service.version, documents=len(service.collection))


@router.get("/readyz", summary="Ready when every collection's artifacts are loaded")
def readyz(request: Request) -> JSONResponse:
    """200 once every collection is loaded. `scorers` says what orders each collection's results; a ranker
    that was asked for but refused at load shows its `error`, and that collection serves the fusion order.
    `answered` counts this process's requests by how its ranker answered them: `ranked`, or left in the
    fusion order as `out_of_domain` (unlike its training requests) or `out_of_regime` (another task, or a
    gated branch missing). `reload_failures` names, per collection, the last newly published version (or
    ranker) that was refused, the file to blame and the version still served; it is empty once a later reload
    succeeds, and a refusal leaves the service ready. With several worker processes, all of this is the
    answering worker's, and `workers` lists every worker that has finished loading, with its versions and the
    error of the last reload it applied (`reload_error`, null when it succeeded)."""
    registry = getattr(request.app.state, "registry", None)
    services = registry.items() if registry else []
    loaded = {name: service.version for name, service in services}
    ready = registry is not None and len(loaded) == len(registry.names)
    scorers = {
        name: {**service.ranker.as_dict(), "answered": dict(getattr(service.pipeline.scorer, "counts", {}))}
        for name, service in services
    }
    failures = (
        {name: failure.as_dict() for name, failure in registry.reload_failures.items()} if registry else {}
    )
    body = {"ready": ready, "collections": loaded, "scorers": scorers, "reload_failures": failures}
    broadcast = getattr(request.app.state, "broadcast", None)
    if broadcast is not None:
        body["workers"] = [
            {"pid": s.pid, "collections": s.versions, "reload_error": s.error} for s in broadcast.workers()
        ]
    return JSONResponse(status_code=200 if ready else 503, content=body)


@router.get(
    "/version", response_model=VersionInfo, summary="Software version and each collection's index version"
)
def version(registry: Registry) -> VersionInfo:
    try:
        software = metadata.version("searchrec")
    except metadata.PackageNotFoundError:
        software = "unknown"
    return VersionInfo(searchrec=software, collections={n: s.version for n, s in registry.items()})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus(metrics: AppMetrics) -> Response:
    return metrics.exposition()
