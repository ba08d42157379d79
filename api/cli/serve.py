"""`searchrec serve`: serve published indices over HTTP.

Every collection is loaded (and so verified: `retrieval.collection.Collection.load`) before the server
starts, in this process or, with several workers, in the supervisor before it forks them; a version that
cannot be served (a file that fails its checksum, an unreadable manifest) ends the command with exit code 2
and a message naming the collection and the file, not a traceback.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.body_limit import DEFAULT_MAX_BODY_BYTES
from api.cli.common import fail
from api.schemas import DEFAULT_MAX_QUERY_CHARS

if TYPE_CHECKING:
    from fastapi import FastAPI

    from api.reload_broadcast import ReloadBroadcast
    from api.workers import RayShards, ServeSettings
    from retrieval.registry import CollectionRegistry

MAX_QUERY_CHARS_ENV = "SEARCHREC_MAX_QUERY_CHARS"
MAX_BODY_BYTES_ENV = "SEARCHREC_MAX_BODY_BYTES"


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
    max_body_bytes: Annotated[
        int,
        typer.Option(
            min=1,
            envvar=MAX_BODY_BYTES_ENV,
            help="Largest request body accepted, in bytes; larger ones get a 413 naming the limit.",
        ),
    ] = DEFAULT_MAX_BODY_BYTES,
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
            help="Worker processes, forked once the collections have loaded (they share that memory), "
            "each serving every collection from one shared port [default: the usable cores]. "
            "1 serves from this process.",
            show_default=False,
        ),
    ] = None,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Run a sharded version's shards as Ray Serve deployments (needs searchrec[distributed]); "
            "this process keeps the REST API, fusion and the ranker.",
        ),
    ] = False,
    ray_address: Annotated[
        str | None, typer.Option(help="A running Ray cluster (ray start --head); default: start a local one.")
    ] = None,
    ray_replicas: Annotated[int, typer.Option(min=1, help="Replicas of each shard's deployment.")] = 1,
    shard_timeout: Annotated[
        float, typer.Option(min=0.001, help="Seconds a request waits for a shard before leaving it out.")
    ] = 2.0,
) -> None:
    """Serve indices over HTTP (OpenAPI docs at /docs). The first index is the default collection."""
    from api.workers import RayShards, run_directory, threads_per_worker, usable_cores, worker_environment

    shards = None
    if ray or ray_address:
        shards = RayShards(address=ray_address, replicas=ray_replicas, timeout_s=shard_timeout)
        if workers not in (None, 1):
            fail("serve --ray serves from one process (its shards scale on the cluster): leave out --workers")
        workers = 1
    workers = workers if workers is not None else usable_cores()
    options = (index, host, port, watch, ranker, feature_log, max_query_chars, max_body_bytes, query_encoder)
    if workers == 1:
        _serve(*options, workers=1, ray=shards)
        return
    with run_directory() as run_dir, worker_environment(run_dir, threads_per_worker(workers)):
        _serve(*options, workers, run_dir)


def _serve(
    index: list[str],
    host: str,
    port: int,
    watch: float | None,
    ranker: list[str] | None,
    feature_log: Path | None,
    max_query_chars: int,
    max_body_bytes: int,
    query_encoder: list[str] | None,
    workers: int,
    run_dir: Path | None = None,
    ray: RayShards | None = None,
) -> None:
    """Check the settings, then serve from this process (one worker) or from forked workers. With several,
    the caller has set the workers' environment (`api.workers.worker_environment`): nothing that reads it
    is imported before this runs."""
    import uvicorn

    from api.app import collection_roots
    from api.workers import ServeSettings, serve_workers, threads_per_worker
    from indexer.artifact import ArtifactError
    from indexer.versions import resolve_artifact
    from retrieval.collection import query_kind_of

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
            max_body_bytes=max_body_bytes,
            threads=threads_per_worker(workers),
            query_encoders=_per_collection("--query-encoder", query_encoder or [], list(roots)),
            run_dir=run_dir,
            ray=ray,
        )
        for name, choice in settings.query_encoders.items():
            query_kind_of(roots[name], choice)  # a setting that does not fit the build fails here
        _app(settings)  # checks the settings before anything loads
    except (ArtifactError, ValueError) as error:
        fail(str(error))
    logging.basicConfig(level=logging.INFO)
    if workers == 1:
        try:  # loaded here, not in the app's startup, so a version that cannot be served exits cleanly
            registry = _load(settings)
        except ArtifactError as error:
            fail(str(error))
        try:
            uvicorn.run(_app(settings, registry), host=host, port=port)
        finally:
            registry.close()
        return
    try:
        serve_workers(settings, partial(_app, settings), workers=workers, host=host, port=port)
    except ArtifactError as error:
        fail(str(error))
    except (ValueError, OSError) as error:
        fail(f"could not start the workers: {error}")


def _load(settings: ServeSettings) -> CollectionRegistry:
    """Every collection of `settings`, loaded (`ArtifactError` naming the collection and file that fail)."""
    from retrieval.registry import CollectionRegistry, service_opener

    shard_opener = None
    if settings.ray is not None:
        from retrieval.ray_shards import ray_shard_opener

        ray = settings.ray
        shard_opener = ray_shard_opener(replicas=ray.replicas, timeout_s=ray.timeout_s, address=ray.address)
    opener = service_opener(
        settings.rankers or None, settings.feature_log, settings.query_encoders or None, shard_opener
    )
    registry = CollectionRegistry(settings.indexes, opener=opener)
    registry.load()
    return registry


def _app(
    settings: ServeSettings,
    registry: CollectionRegistry | None = None,
    broadcast: ReloadBroadcast | None = None,
) -> FastAPI:
    """The app `settings` describe, serving `registry` when given (else its lifespan loads the artifacts)."""
    from api.app import create_app

    return create_app(
        settings.indexes,
        registry=registry,
        watch_interval_s=settings.watch_interval_s,
        rankers=settings.rankers or None,
        feature_log=settings.feature_log,
        max_query_chars=settings.max_query_chars,
        max_body_bytes=settings.max_body_bytes,
        broadcast=broadcast,
        query_encoders=settings.query_encoders or None,
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
