"""`searchrec eval-rec`: leave-last-out quality of `/recommend` against popularity and item-kNN baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import bad_input_fails, fail, work_folder


def register(app: typer.Typer) -> None:
    app.command("eval-rec")(evaluate_rec)


def evaluate_rec(
    index: Annotated[Path, typer.Option(help="Index root built with a behaviour log.")],
    behaviour: Annotated[
        Path, typer.Option(help="The full behaviour log (the same columns the build mapped).")
    ],
    holdout: Annotated[
        str, typer.Option(help="Which event to hold out per user; only 'last' is supported.")
    ] = "last",
    k: Annotated[int, typer.Option(min=1, max=1000, help="Length of each recommendation list.")] = 10,
    workdir: Annotated[
        Path | None, typer.Option(help="Where to rebuild (default: a temporary folder).")
    ] = None,
    ranker: Annotated[
        Path | None,
        typer.Option(help="Also rank with this ranker (trained without the held-out events)."),
    ] = None,
    train_ranker: Annotated[
        bool,
        typer.Option(
            help="Also train a ranker on the history alone (labels: each user's last history events) "
            "and compare it with the fusion order."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Hold out each user's last event, rebuild on the rest, and compare /recommend with the baselines."""
    from jobs.evaluation import format_means
    from jobs.holdout import evaluate_holdout

    if ranker is not None and train_ranker:
        fail("give --ranker or --train-ranker, not both")
    if holdout != "last":
        fail(f"--holdout {holdout!r} is not supported; choose 'last'")
    with bad_input_fails(), work_folder(workdir, "searchrec-evalrec-") as folder:
        report = evaluate_holdout(
            index, behaviour, folder, k=k, ranker=ranker, train_ranker=train_ranker, progress=progress,
            log=lambda m: typer.echo(m, err=True),
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"users": report.users, "k": k, "metrics": report.metrics}, indent=2))
        return
    typer.echo(f"{report.users} users, last event held out, {report.history_events} history events")
    typer.echo(format_means(report.metrics))
