"""`create_app()`: the FastAPI application. Artifacts load in the lifespan, never at import time."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimit
from api.errors import install_error_handlers
from api.metrics import install_metrics
from api.reload_broadcast import ReloadBroadcast
from api.routes import admin, collections, operations, recommend, search, writes
from api.schemas import DEFAULT_MAX_QUERY_CHARS
from indexer.encoders import check_query_encoder
from retrieval.registry import CollectionRegistry, collection_name, service_opener

STATIC = Path(__file__).resolve().parent / "static"  # the search page: HTML, JavaScript, CSS; no build step


def collection_roots(
    indexes: Sequence[Path | str | tuple[str | None, Path | str]] | Mapping[str, Path | str],
) -> dict[str, Path]:
    """Collection name -> index root. In a list, a root that comes as a (name, root) pair with a name gets
    that name; any other gets the name its build recorded (`build --name`), else its folder's name
    (`collection_name`). Names must be unique. A mapping is taken as given."""
    if isinstance(indexes, Mapping):
        return {name: Path(root) for name, root in indexes.items()}
    roots: dict[str, Path] = {}
    for index in indexes:
        given, root = index if isinstance(index, tuple) else (None, index)
        name = given or collection_name(Path(root))
        if name in roots:
            raise ValueError(f"two indexes are both named {name!r}; give each its own name with NAME=ROOT")
        roots[name] = Path(root)
    return roots


def create_app(
    indexes: Path | list[Path] | dict[str, Path],
    *,
    registry: CollectionRegistry | None = None,
    admin_token: str | None = None,
    watch_interval_s: float | None = None,
    rankers: dict[str, Path] | None = None,
    feature_log: Path | None = None,
    max_query_chars: int = DEFAULT_MAX_QUERY_CHARS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    broadcast: ReloadBroadcast | None = None,
    query_encoders: dict[str, str] | None = None,
) -> FastAPI:
    """An app serving the collections under `indexes` (the first is the default) or an opened `registry`.

    `rankers`: collection name -> ranker root scoring that collection's merged candidates (the others use
    the fusion order); `feature_log`: where the rankers log the features of each request they score;
    `max_query_chars`: the longest `/search` query accepted (longer ones get a 422 naming `query`);
    `max_body_bytes`: the largest request body accepted (larger ones get a 413 naming the limit);
    `broadcast`: with several worker processes, how a reload one worker is asked for reaches the others;
    `query_encoders`: collection name -> which encoder embeds its queries (`indexer.encoders.QUERY_ENCODERS`;
    a collection not named gets ``auto``: ONNX int8 for a MiniLM collection).
    """
    for setting, value, unit in (
        ("max_query_chars", max_query_chars, "characters"),
        ("max_body_bytes", max_body_bytes, "bytes"),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{setting} must be a positive number of {unit}, got {value!r}")
    roots = collection_roots([indexes] if isinstance(indexes, Path | str) else indexes)
    if unknown := sorted(set(rankers or {}) - set(roots)):
        raise ValueError(f"a ranker is given for unknown collection(s) {unknown}; collections: {list(roots)}")
    if unknown := sorted(set(query_encoders or {}) - set(roots)):
        raise ValueError(
            f"a query encoder is given for unknown collection(s) {unknown}; collections: {list(roots)}"
        )
    for choice in (query_encoders or {}).values():
        check_query_encoder(choice)
    token = admin_token if admin_token is not None else os.environ.get(admin.TOKEN_ENV) or None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = registry is None
        app.state.registry = registry or CollectionRegistry(
            roots, opener=service_opener(rankers, feature_log, query_encoders)
        )
        if owned:
            app.state.registry.load()
        if watch_interval_s:
            app.state.registry.watch(watch_interval_s)
        app.state.registry.follow_writes()
        if broadcast is not None:
            broadcast.start(app.state.registry)
        try:
            yield
        finally:
            if broadcast is not None:
                broadcast.stop()
            if owned:  # close only what this app opened
                app.state.registry.close()

    app = FastAPI(
        title="searchrec",
        version="0.1.0",
        summary="Multi-branch search and recommendation retrieval.",
        lifespan=lifespan,
    )
    app.state.admin_token = token
    app.state.max_query_chars = max_query_chars
    app.state.broadcast = broadcast
    # innermost of the middlewares, so the metrics and the worker header see its 413s too
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, max_query_chars=max_query_chars)
    app.state.metrics = install_metrics(app)
    app.add_middleware(WorkerHeader)
    install_error_handlers(app)
    app.include_router(search.router)
    app.include_router(recommend.router)
    app.include_router(collections.router)
    app.include_router(writes.router)
    app.include_router(operations.router)
    if token:
        app.include_router(admin.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def search_page() -> FileResponse:
        """The search page (`api/static/`): query, filters, location, provenance, explain, similar,
        recommend."""
        return FileResponse(STATIC / "index.html")

    return app


class WorkerHeader:
    """Names the process that answered in an `X-Worker` header (its pid), to tell workers apart."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                worker = (b"x-worker", str(os.getpid()).encode())
                message = {**message, "headers": [*message.get("headers", []), worker]}
            await send(message)

        await self.app(scope, receive, named)
