"""`searchrec train-ranker`: learn a ranker from judged queries run through the service's own pipeline.

Each training query goes through the same recall pipeline `/search` runs (branch depth 100 by default);
its merged candidates are labelled from the qrels (grade, 0 when unjudged) and featurised by the same code
the serving scorer uses. Queries are split into train and validation (seeded); LambdaMART and a list-wise
MLP are trained with early stopping on validation nDCG@10, and the better one is written as a ranker
artifact. Validation nDCG@10 counts a query whose relevant documents recall missed as 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import fail


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
    models: Annotated[
        list[str] | None, typer.Option("--model", help="Model types to train (repeatable); default: both.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar over queries.")] = True,
) -> None:
    """Train LambdaMART and a list-wise MLP on judged queries; keep the better one on validation nDCG@10."""
    from indexer.artifact import ArtifactError

    if behaviour is not None:
        fail(
            "--behaviour (next-item ranking for /recommend) needs the recommendation pipeline, not built yet"
        )
    if queries is None or qrels is None:
        fail("give --queries and --qrels (the judged training queries)")
    try:
        _train_search(index, out, queries, qrels, features, valid_fraction, seed, depth, models, progress)
    except (ValueError, FileNotFoundError, ArtifactError) as error:
        fail(str(error))


def _train_search(
    index: Path, out: Path, queries_path: Path, qrels_path: Path, features: Path | None,
    valid_fraction: float, seed: int, depth: int, kinds: list[str] | None, progress: bool,
) -> None:  # fmt: skip
    from ranker.artifact import write_ranker
    from ranker.features import (
        CollectionView,
        FeatureDeclaration,
        FeatureExtractor,
        default_search_declaration,
    )
    from ranker.features.declarations import resolve
    from ranker.training import (
        MODEL_KINDS,
        CandidateRecorder,
        collect_search_examples,
        featurize,
        fusion_metrics,
        metrics_table,
        split_keys,
        subset,
        train_rankers,
    )  # fmt: skip
    from retrieval.evaluation import check_qrels_match_queries, read_qrels, read_queries
    from retrieval.pipeline import PipelineConfig
    from retrieval.service import CollectionService

    judged, texts = read_qrels(qrels_path), read_queries(queries_path)
    check_qrels_match_queries(judged, texts, qrels_path, queries_path)
    recorder = CandidateRecorder()
    service = CollectionService.open(index, scorer=recorder, config=PipelineConfig(branch_limit=depth))
    branches = [source.name for source in service.pipeline.sources]
    declaration = FeatureDeclaration.load(features) if features else default_search_declaration()
    view = CollectionView(service.collection)
    declaration = resolve(declaration, view, branches)
    extractor = FeatureExtractor(declaration, view, branches=branches)

    def run(text: str):
        service.run(text, 10)
        return recorder.take()

    examples = collect_search_examples(run, extractor.ids_of, texts, judged, progress=progress)
    train_keys, valid_keys = split_keys([e.key for e in examples], valid_fraction, seed)
    train, valid = (
        featurize(extractor, subset(examples, train_keys)),
        featurize(extractor, subset(examples, valid_keys)),
    )
    result = train_rankers(train, valid, seed=seed, kinds=kinds or MODEL_KINDS, names=extractor.names)
    recalled = sum(bool(e.labels.any()) for e in examples)
    training = {
        "index": str(service.collection.path), "collection": service.collection.name,
        "collection_version": service.version, "queries": str(queries_path), "qrels": str(qrels_path),
        "train_queries": len(train), "valid_queries": len(valid), "queries_with_relevant_in_recall": recalled,
        "seed": seed, "valid_fraction": valid_fraction, "branch_depth": depth, "pipeline_branches": branches,
        "candidates": int(len(train.labels) + len(valid.labels)), "feature_importance": result.importance,
        "fusion": fusion_metrics(train, valid),
    }  # fmt: skip
    version, path = write_ranker(out, result.model, declaration, metrics=result.metrics, training=training)
    service.close()
    typer.echo(
        f"{len(examples)} queries ({len(train)} train, {len(valid)} validation); "
        f"{recalled} have a relevant document in recall, the others count as 0 in nDCG@10"
    )
    fusion = training["fusion"]
    typer.echo(metrics_table({"fusion (no ranker)": fusion, **result.metrics}, result.best))
    typer.echo(f"kept {result.best}: ranker version {version} at {path}")
