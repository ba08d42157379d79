"""`searchrec build`: build items (and optionally behaviour events) into a new published index version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import bad_input_fails


def register(app: typer.Typer) -> None:
    app.command()(build)


def build(
    corpus: Annotated[
        Path, typer.Option(help="A BEIR folder (corpus.jsonl) or a .jsonl/.csv/.parquet item file.")
    ],
    out: Annotated[Path, typer.Option(help="Index root; each build becomes a new version under it.")],
    behaviour: Annotated[
        Path | None, typer.Option(help="Behaviour events (user_id, item_id, timestamp[, weight]).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Collection name (default: the root's name).")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML build configuration.")] = None,
    column_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="ROLE=COLUMN, repeatable; ROLE= turns an optional role off (lat= drops the coordinates). "
            "Roles: id, text (a,b or name:col), category, tags, lat, lon, popularity, numeric.NAME, "
            "categorical.NAME, vector (the items' own embeddings, indexed instead of encoding the text), "
            "user_id, item_id, timestamp, weight. Item roles left unmapped, but vector, are filled from "
            "columns named like them (id/_id, title, name, text, body, lat/latitude, lon/lng, ...).",
        ),
    ] = None,
    skip_bad_rows: Annotated[
        bool, typer.Option("--skip-bad-rows", help="Leave bad rows out (and count them) instead of failing.")
    ] = False,
    analyzer: Annotated[
        str | None,
        typer.Option(help="Override the default analyzer (auto, english, chinese, cjk_bigram, cjk_unigram)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Index only the first N documents.")] = None,
    shards: Annotated[
        int | None,
        typer.Option(help="Split BM25, the dense index and the forward index into N row ranges (default 1)."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Analyse, encode and write the shards on Ray (needs searchrec[distributed]); see README.",
        ),
    ] = False,
    ray_address: Annotated[
        str | None, typer.Option(help="A running Ray cluster (ray start --head); default: start a local one.")
    ] = None,
    ray_actors: Annotated[
        int | None, typer.Option(help="Encoder actors (default: one per GPU, else one per cluster CPU).")
    ] = None,
) -> None:
    """Build an index from a corpus and publish it atomically under OUT.

    Item columns the config and --map leave unmapped are recognised by name; the mapping used is printed
    to stderr. Bad input rows are listed as file:line: field: message and fail the build (exit code 2)
    unless --skip-bad-rows. Events on items outside the corpus are counted and left out.
    """
    from indexer.build import build_collection
    from indexer.config import BuildConfig, apply_column_map

    with bad_input_fails():  # pydantic's ValidationError is a ValueError
        settings = BuildConfig.from_toml(config) if config else BuildConfig()
        overrides = {"analyzer": analyzer, "limit": limit, "name": name, "shards": shards}
        overrides = {key: value for key, value in overrides.items() if value is not None}
        if skip_bad_rows:
            overrides["skip_bad_rows"] = True
        settings = apply_column_map(
            # exclude_unset: roles the config leaves unset stay unset, to be filled by column name
            BuildConfig.model_validate({**settings.model_dump(exclude_unset=True), **overrides}),
            column_map or [],
        )
        spread = None
        if ray or ray_address:
            from indexer.ray_build import RayBuild

            spread = RayBuild(actors=ray_actors, address=ray_address)
        report = build_collection(
            corpus,
            out,
            settings,
            behaviour=behaviour,
            spread=spread,
            progress=progress,
            log=lambda m: typer.echo(m, err=True),
        )
    typer.echo(f"published version {report.version}: {report.n_docs} documents at {report.path}")
    if report.skipped_rows or report.skipped_events:
        typer.echo(
            f"skipped {report.skipped_rows} bad item row(s) and {report.skipped_events} bad event row(s)"
        )
    if report.unknown_item_events:
        typer.echo(f"left out {report.unknown_item_events} event(s) on unknown items")
