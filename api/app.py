"""`create_app()`: the FastAPI application. Artifacts load in the lifespan, never at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes import health, search
from retrieval.service import CollectionService


def create_app(index: Path, *, service: CollectionService | None = None) -> FastAPI:
    """An app serving the collection published under `index` (or an already opened `service`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.default = service or CollectionService.open(index)
        try:
            yield
        finally:
            if service is None:  # close only what this app opened
                app.state.default.close()

    app = FastAPI(
        title="searchrec",
        version="0.1.0",
        summary="Multi-branch search and recommendation retrieval.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(search.router)
    app.include_router(health.router)
    return app
