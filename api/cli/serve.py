"""`searchrec serve`: serve published indices over HTTP."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import fail


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    index: Annotated[
        Path, typer.Option(help="Index root (its current version is served) or a version directory.")
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Serve an index over HTTP (OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app
    from indexer.artifact import ArtifactError
    from indexer.versions import resolve_artifact

    try:
        resolve_artifact(index)
    except ArtifactError as error:
        fail(str(error))
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(create_app(index), host=host, port=port)
