"""`searchrec train-ranker`: learn a ranker from requests run through the service's own pipeline.

Search (`--queries`, `--qrels`): each training query goes through the recall pipeline `/search` runs
(branch depth 100 by default), its text embedded by the query encoder `/search` uses by default (ONNX int8
for a MiniLM collection; the manifest records which as `query_encoder`); its merged candidates are labelled
from the qrels (grade, 0 when unjudged).
Recommendation (`--behaviour`): the collection is rebuilt without each user's last event, and the
candidates `/recommend` gives each user are labelled with that event. Either way the features come from the
code the serving scorer runs, LambdaMART and a list-wise MLP are trained with early stopping on validation
nDCG@10 (a list whose relevant item recall missed counts as 0), and the better one is published as a
ranker artifact. The work itself is in `jobs.train_ranker`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import bad_input_fails, fail, work_folder


def register(app: typer.Typer) -> None:
    app.command("train-ranker")(train_ranker)


def train_ranker(
    index: Annotated[Path, typer.Option(help="Index root (its current version) or a version directory.")],
    out: Annotated[Path, typer.Option(help="Ranker root; each training becomes a new version under it.")],
    queries: Annotated[Path | None, typer.Option(help="BEIR queries.jsonl of the training queries.")] = None,
    qrels: Annotated[Path | None, typer.Option(help="BEIR qrels TSV of the training queries.")] = None,
    behaviour: Annotated[
        Path | None, typer.Option(help="Behaviour events, for a next-item ranker (/recommend).")
    ] = None,
    features: Annotated[
        Path | None, typer.Option(help="Feature declaration (.toml/.json); default: the search defaults.")
    ] = None,
    valid_fraction: Annotated[
        float, typer.Option(min=0.01, max=0.9, help="Share of validation queries.")
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split and of both models.")] = 0,
    depth: Annotated[int, typer.Option(min=1, max=10_000, help="Candidates per recall branch.")] = 100,
    branch_dropout: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Search: share of training queries also run with each branch left out."
        ),
    ] = 0.5,
    models: Annotated[
        list[str] | None, typer.Option("--model", help="Model types to train (repeatable); default: both.")
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option(help="With --behaviour: where to rebuild (default: a temporary folder).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train LambdaMART and a list-wise MLP; keep the better one on validation nDCG@10.

    With --queries and --qrels: a search ranker (/search). With --behaviour: a next-item ranker
    (/recommend), labelled with each user's last event on a collection rebuilt without it.
    """
    from jobs.train_ranker import train_recommend_ranker, train_search_ranker
    from ranker.features import FeatureDeclaration
    from ranker.training import MODEL_KINDS, metrics_table

    if behaviour is not None and (queries is not None or qrels is not None):
        fail("give either --behaviour (a /recommend ranker) or --queries and --qrels (a /search ranker)")
    if behaviour is None and (queries is None or qrels is None):
        fail("give --queries and --qrels (judged training queries), or --behaviour (a behaviour log)")
    with bad_input_fails():
        declaration = FeatureDeclaration.load(features) if features else None
        kinds = models or list(MODEL_KINDS)
        if behaviour is not None:
            with work_folder(workdir, "searchrec-train-") as folder:
                trained = train_recommend_ranker(
                    index, behaviour, out, folder, declaration=declaration,
                    valid_fraction=valid_fraction, seed=seed, depth=depth, kinds=kinds, progress=progress,
                    log=lambda message: typer.echo(message, err=True),
                )  # fmt: skip
        else:
            assert queries is not None and qrels is not None
            trained = train_search_ranker(
                index, out, queries, qrels, declaration=declaration, valid_fraction=valid_fraction,
                seed=seed, depth=depth, dropout=branch_dropout, kinds=kinds, progress=progress,
            )  # fmt: skip
    for note in trained.notes:
        typer.echo(note)
    typer.echo(metrics_table({"fusion (no ranker)": trained.fusion, **trained.metrics}, trained.best))
    typer.echo(f"kept {trained.best}: ranker version {trained.version} at {trained.path}")
