"""`searchrec versions`: list the published versions of an index root, roll back to an older one, and compare
two versions part by part (`indexer.version_diff`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import fail

versions_app = typer.Typer(
    help="List, roll back and compare the versions of an index root.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(versions_app, name="versions")


@versions_app.command("list")
def list_versions(root: Annotated[Path, typer.Argument(help="Index root.")]) -> None:
    """Table of finished versions, oldest first: name, build time, documents; `*` marks the current one. A
    version whose manifest is damaged is listed with the reason (its files are not checked here: `rollback`
    checks them)."""
    from indexer.artifact import ArtifactError, read_manifest
    from indexer.versions import VersionStore

    if not root.is_dir():
        fail(f"index root {root} does not exist")
    rows, damaged = [], []
    for version in VersionStore(root).published():
        try:
            manifest = read_manifest(version.path, verify=False)
        except ArtifactError as error:
            manifest = {}
            damaged.append(f"{version.name}: {error}")
        created = str(manifest.get("created_at", "?"))
        docs = manifest.get("params", {}).get("n_docs", "?")
        rows.append(("*" if version.current else "", version.name, created, str(docs)))
    if not rows:
        fail(f"{root} holds no finished version; run `searchrec build` first")
    typer.echo(f"{'':1} {'version':<26} {'created-at':<26} {'docs':>10}")
    for marker, name, created, docs in rows:
        typer.echo(f"{marker:1} {name:<26} {created:<26} {docs:>10}")
    for line in damaged:
        typer.secho(f"damaged: {line}", fg=typer.colors.RED, err=True)


@versions_app.command("rollback")
def rollback(
    root: Annotated[Path, typer.Argument(help="Index root.")],
    version: Annotated[str, typer.Argument(help="Version to make current (see `versions list`).")],
) -> None:
    """Make VERSION the current version atomically, after checking every file of it against its manifest."""
    from indexer.artifact import ArtifactError, read_manifest
    from indexer.versions import VersionStore

    store = VersionStore(root)
    try:
        known = {v.name: v for v in store.published()}
        if version not in known:
            raise ArtifactError(
                f"version {version!r} does not exist under {root}; known versions: {sorted(known) or 'none'}"
            )
        read_manifest(known[version].path)
        previous = store.current_name()
        store.publish(version)
    except ArtifactError as error:
        fail(str(error))
    typer.echo(f"current version of {root}: {version} (was {previous})")


@versions_app.command("diff")
def diff(
    first: Annotated[Path, typer.Argument(help="A version directory, or a root (its current version).")],
    second: Annotated[Path, typer.Argument(help="The version to compare it with, likewise.")],
) -> None:
    """What differs between two versions, part by part: files by checksum, the forward index by its records,
    the manifest without build time, version name and timings. Exit code 0 when nothing differs, 1 otherwise.
    """
    from api.cli.common import bad_input_fails
    from indexer.version_diff import diff_versions

    with bad_input_fails():
        differences = diff_versions(first, second)
    for difference in differences:
        typer.echo(str(difference))
    if differences:
        raise typer.Exit(1)
    typer.echo("identical: every file, every forward-index record and the manifest")
