"""`searchrec eval`: ranking quality of the service's pipeline on judged queries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import fail

EVAL_METRICS = ["ndcg@10", "recall@100", "map@100", "mrr@10"]


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)


def evaluate(
    index: Annotated[Path, typer.Option(help="Index root or version directory.")],
    queries: Annotated[Path, typer.Option(help="BEIR queries.jsonl.")],
    qrels: Annotated[Path, typer.Option(help="BEIR qrels TSV (query-id, corpus-id, score).")],
    k: Annotated[int, typer.Option(help="Depth of each ranking.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics as JSON.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Run the qrels' queries through the service's pipeline and report ranking quality."""
    from indexer.artifact import ArtifactError
    from ranker.metrics import evaluate_run
    from retrieval.evaluation.datasets import read_qrels, read_queries
    from retrieval.evaluation.runner import run_queries
    from retrieval.service import CollectionService

    try:
        judged = read_qrels(qrels)
        texts = read_queries(queries)
        missing = sorted(set(judged) - set(texts))
        if len(missing) == len(judged):
            raise ValueError(f"no query id of {qrels} is in {queries} (e.g. {missing[:3]})")
        service = CollectionService.open(index)
    except (ValueError, FileNotFoundError, ArtifactError) as error:
        fail(str(error))
    asked = {qid: texts[qid] for qid in judged if qid in texts}
    runs = run_queries(service, asked, k=k, progress=progress)
    table = {"merged": evaluate_run(runs.merged, judged, EVAL_METRICS)[1]}
    for name, run in sorted(runs.branches.items()):
        table[name] = evaluate_run(run, judged, EVAL_METRICS)[1]
    if as_json:
        typer.echo(
            json.dumps({"queries": len(asked), "version": service.version, "metrics": table}, indent=2)
        )
        return
    typer.echo(f"{len(asked)} queries, index version {service.version}")
    typer.echo(f"{'run':<10}" + "".join(f"{m:>12}" for m in EVAL_METRICS))
    for name, values in table.items():
        typer.echo(f"{name:<10}" + "".join(f"{values[m]:>12.4f}" for m in EVAL_METRICS))
