"""`searchrec serve`: serve published indices over HTTP."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import fail
from api.schemas import DEFAULT_MAX_QUERY_CHARS

MAX_QUERY_CHARS_ENV = "SEARCHREC_MAX_QUERY_CHARS"
# uvicorn replaces a worker that does not answer its supervisor's ping within this many seconds; a worker
# importing torch and loading models on a busy machine can be slow to answer (uvicorn's default is 5).
WORKER_HEALTHCHECK_S = 60


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
    query_encoder: Annotated[
        list[str] | None,
        typer.Option(
            help="Which encoder embeds the queries, for every collection, or NAME=ENCODER for one; "
            "repeatable. auto (default): ONNX int8 for a MiniLM collection, the build's encoder otherwise; "
            "build: the build's encoder; or torch, onnx-int8, e5-multilingual (of the build's space).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes, each serving every collection from one shared port "
            "[default: the usable cores]. 1 serves from this process.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve indices over HTTP (OpenAPI docs at /docs). The first index is the default collection."""
    import uvicorn

    from api.app import collection_roots
    from api.workers import (
        WORKER_APP,
        ServeSettings,
        create_settings_app,
        run_directory,
        threads_per_worker,
        usable_cores,
        worker_environment,
    )
    from indexer.artifact import ArtifactError
    from indexer.versions import resolve_artifact
    from retrieval.collection import query_kind_of

    workers = workers if workers is not None else usable_cores()
    try:
        roots = collection_roots([_parse(spec) for spec in index])
        for root in roots.values():
            resolve_artifact(root)
        settings = ServeSettings(
            indexes=roots,
            rankers=_rankers(ranker or [], list(roots)),
            feature_log=feature_log,
            watch_interval_s=watch,
            max_query_chars=max_query_chars,
            threads=threads_per_worker(workers),
            query_encoders=_per_collection("--query-encoder", query_encoder or [], list(roots)),
        )
        for name, choice in settings.query_encoders.items():
            query_kind_of(roots[name], choice)  # a setting that does not fit the build fails here
        app = create_settings_app(settings)  # checks the settings here, not in each worker
    except (ArtifactError, ValueError) as error:
        fail(str(error))
    logging.basicConfig(level=logging.INFO)
    if workers == 1:
        uvicorn.run(app, host=host, port=port)
        return
    with run_directory() as run_dir:
        settings = settings.model_copy(update={"run_dir": run_dir})
        with worker_environment(settings):
            uvicorn.run(
                WORKER_APP,
                factory=True,
                workers=workers,
                host=host,
                port=port,
                timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
            )


def _rankers(specs: list[str], names: list[str]) -> dict[str, Path]:
    """Collection name -> ranker root: a bare DIR applies to every collection, NAME=DIR to one."""
    return {name: Path(value) for name, value in _per_collection("--ranker", specs, names).items()}


def _per_collection(option: str, specs: list[str], names: list[str]) -> dict[str, str]:
    """Collection name -> value: a bare VALUE applies to every collection, NAME=VALUE to one."""
    values: dict[str, str] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep:
            name, value = "", spec
        if name and name not in names:
            raise ValueError(f"{option} {spec}: no collection {name!r}; collections: {names}")
        for each in [name] if name else names:
            values[each] = value
    return values
