"""The `searchrec` command line: build an index, serve it, evaluate it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="searchrec: build, serve and evaluate search and recommendation indices.", no_args_is_help=True
)

EVAL_METRICS = ["ndcg@10", "recall@100", "map@100", "mrr@10"]


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
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
        _fail(str(error))
    typer.echo(f"published version {report.version}: {report.n_docs} documents at {report.path}")


@app.command()
def serve(
    index: Annotated[
        Path, typer.Option(help="Index root (its current version is served) or a version directory.")
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Serve an index over HTTP (OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app
    from indexer.artifact import ArtifactError
    from indexer.versions import resolve_artifact

    try:
        resolve_artifact(index)
    except ArtifactError as error:
        _fail(str(error))
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(create_app(index), host=host, port=port)


@app.command("eval")
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
        _fail(str(error))
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


if __name__ == "__main__":
    app()
