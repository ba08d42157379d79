"""Helpers shared by the command modules."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a red error line and exit with `code` (2: bad input)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def bad_input_fails() -> Iterator[None]:
    """Turn the errors bad input raises (ValueError, a missing file, an unreadable artifact) into `fail`."""
    from indexer.artifact import ArtifactError

    try:
        yield
    except (ValueError, FileNotFoundError, ArtifactError) as error:
        fail(str(error))


@contextmanager
def work_folder(workdir: Path | None, prefix: str) -> Iterator[Path]:
    """`workdir` when given, else a temporary folder removed on exit."""
    if workdir is not None:
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        yield Path(scratch)
