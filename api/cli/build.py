"""`searchrec build`: build a corpus into a new published index version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import fail


def register(app: typer.Typer) -> None:
    app.command()(build)


def build(
    corpus: Annotated[Path, typer.Option(help="A BEIR folder holding corpus.jsonl.")],
    out: Annotated[Path, typer.Option(help="Index root; each build becomes a new version under it.")],
    config: Annotated[Path | None, typer.Option(help="TOML build configuration.")] = None,
    analyzer: Annotated[
        str | None, typer.Option(help="Override the analyzer (english, chinese, cjk_bigram).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Index only the first N documents.")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Build an index from a corpus and publish it atomically under OUT."""
    from indexer.artifact import ArtifactError
    from indexer.build import build_collection
    from indexer.config import BuildConfig

    try:
        settings = BuildConfig.from_toml(config) if config else BuildConfig()
        overrides = {k: v for k, v in {"analyzer": analyzer, "limit": limit}.items() if v is not None}
        settings = settings.model_copy(update=overrides)
        report = build_collection(
            corpus, out, settings, progress=progress, log=lambda m: typer.echo(m, err=True)
        )
    except (ValueError, FileNotFoundError, ArtifactError) as error:
        fail(str(error))
    typer.echo(f"published version {report.version}: {report.n_docs} documents at {report.path}")
