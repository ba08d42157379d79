"""`searchrec serve`: serve published indices over HTTP."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import fail


def register(app: typer.Typer) -> None:
    app.command()(serve)


def _parse(spec: str) -> tuple[str | None, Path]:
    name, sep, root = spec.partition("=")
    return (name, Path(root)) if sep else (None, Path(spec))


def serve(
    index: Annotated[
        list[str],
        typer.Option(
            help="Index root (its current version is served), or NAME=ROOT; repeat for more collections."
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    watch: Annotated[
        float | None, typer.Option(help="Poll for newly published versions every this many seconds.")
    ] = None,
) -> None:
    """Serve indices over HTTP (OpenAPI docs at /docs). The first index is the default collection."""
    import uvicorn

    from api.app import collection_roots, create_app
    from indexer.artifact import ArtifactError
    from indexer.versions import resolve_artifact

    specs = [_parse(spec) for spec in index]
    try:
        if any(name for name, _ in specs):
            roots = {name or root.resolve().name: root for name, root in specs}
        else:
            roots = collection_roots([root for _, root in specs])
        for root in roots.values():
            resolve_artifact(root)
    except (ArtifactError, ValueError) as error:
        fail(str(error))
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(create_app(roots, watch_interval_s=watch), host=host, port=port)
