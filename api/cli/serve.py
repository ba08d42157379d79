"""`searchrec serve`: serve published indices over HTTP."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import fail
from api.schemas import DEFAULT_MAX_QUERY_CHARS

MAX_QUERY_CHARS_ENV = "SEARCHREC_MAX_QUERY_CHARS"


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
    ranker: Annotated[
        list[str] | None,
        typer.Option(
            help="Ranker root scoring every collection's candidates, or NAME=DIR for one collection; "
            "repeatable. A ranker a collection cannot serve is refused at load (see /readyz)."
        ),
    ] = None,
    feature_log: Annotated[
        Path | None, typer.Option(help="Append the features each ranker computes, per request, to this file.")
    ] = None,
    max_query_chars: Annotated[
        int,
        typer.Option(
            min=1,
            envvar=MAX_QUERY_CHARS_ENV,
            help="Longest /search query accepted, in characters; longer ones get a 422 naming `query`.",
        ),
    ] = DEFAULT_MAX_QUERY_CHARS,
) -> None:
    """Serve indices over HTTP (OpenAPI docs at /docs). The first index is the default collection."""
    import uvicorn

    from api.app import collection_roots, create_app
    from indexer.artifact import ArtifactError
    from indexer.versions import resolve_artifact

    try:
        roots = collection_roots([_parse(spec) for spec in index])
        for root in roots.values():
            resolve_artifact(root)
        rankers = _rankers(ranker or [], list(roots))
        app = create_app(
            roots,
            watch_interval_s=watch,
            rankers=rankers,
            feature_log=feature_log,
            max_query_chars=max_query_chars,
        )
    except (ArtifactError, ValueError) as error:
        fail(str(error))
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(app, host=host, port=port)


def _rankers(specs: list[str], names: list[str]) -> dict[str, Path]:
    """Collection name -> ranker root: a bare DIR applies to every collection, NAME=DIR to one."""
    rankers: dict[str, Path] = {}
    for spec in specs:
        name, path = _parse(spec)
        if name is not None and name not in names:
            raise ValueError(f"--ranker {spec}: no collection {name!r}; collections: {names}")
        for each in [name] if name is not None else names:
            rankers[each] = path
    return rankers
