"""The `searchrec` command line: build an index, serve it, evaluate it. One module per command group."""

from __future__ import annotations

import typer

from api.cli import build, evaluate, evaluate_rec, prepare, serve, train, versions

app = typer.Typer(
    help="searchrec: build, serve and evaluate search and recommendation indices.", no_args_is_help=True
)
build.register(app)
serve.register(app)
evaluate.register(app)
evaluate_rec.register(app)
versions.register(app)
train.register(app)
prepare.register(app)
