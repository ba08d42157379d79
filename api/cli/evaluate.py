"""`searchrec eval`: ranking quality of the service's pipeline, of a TREC run file, or of two runs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import bad_input_fails, fail
from api.schemas import MAX_K

if TYPE_CHECKING:
    from jobs.evaluation import RunEvaluation

SEARCH_METRICS = [
    "ndcg@10", "ndcg@100", "recall@10", "recall@100", "recall@1000",
    "map", "ap_11pt", "ap_allpt", "mrr@10", "p@10",
]  # fmt: skip
COMPARE_METRIC = "ndcg@10"


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)


def evaluate(
    qrels: Annotated[Path | None, typer.Option(help="BEIR qrels TSV; default: DATA/qrels/SPLIT.tsv.")] = None,
    index: Annotated[
        Path | None, typer.Option(help="Index root or version directory to run the queries on.")
    ] = None,
    queries: Annotated[
        Path | None, typer.Option(help="BEIR queries.jsonl; default: DATA/queries.jsonl.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="A BEIR folder: queries and qrels are taken from it.")
    ] = None,
    split: Annotated[str, typer.Option(help="Qrels split inside --data.")] = "test",
    k: Annotated[
        int, typer.Option(min=1, max=10_000, help="Depth of every ranking (branches and merged).")
    ] = 1000,
    run: Annotated[Path | None, typer.Option(help="Evaluate this TREC run file instead of an index.")] = None,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="Compare two TREC run files with a paired randomisation test."),
    ] = None,
    write_run: Annotated[
        Path | None, typer.Option(help="Write the pipeline's merged run in TREC format.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write report.html, figures and metrics.json here.")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="Evaluate a running service: POST each query to URL/search (see --collection)."),
    ] = None,
    collection: Annotated[
        str | None, typer.Option(help="With --url: search this collection instead of the default one.")
    ] = None,
    ranker: Annotated[
        Path | None, typer.Option(help="Score the merged candidates with this ranker (root or version).")
    ] = None,
    query_encoder: Annotated[
        str,
        typer.Option(
            help="With --index: which encoder embeds the queries (auto, build, torch, onnx-int8, "
            "e5-multilingual), as serve --query-encoder."
        ),
    ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar over queries.")] = True,
) -> None:
    """Report Recall, MAP (trec_eval and 11-point/all-point AP), nDCG, MRR and P@10, per branch and merged."""
    from jobs.evaluation import check_qrels_match_queries, read_qrels, read_queries

    if data is not None:
        queries = queries or data / "queries.jsonl"
        qrels = qrels or data / "qrels" / f"{split}.tsv"
    if qrels is None:
        fail("give --qrels, or --data with a BEIR folder")
    modes = [m for m in (index, run, compare, url) if m is not None]
    if len(modes) != 1:
        fail(
            "give exactly one of --index (run the pipeline), --url (a running service), --run (a run file) "
            "or --compare (two run files)"
        )
    if collection is not None and url is None:
        fail("--collection goes with --url")
    with bad_input_fails():
        if compare is not None:
            _compare(compare, qrels, as_json)
            return
        if run is not None:
            _evaluate_file(run, qrels, as_json)
            return
        if queries is None:
            fail(f"{'--url' if url is not None else '--index'} needs --queries (or --data)")
        judged, texts = read_qrels(qrels), read_queries(queries)
        check_qrels_match_queries(judged, texts, qrels, queries)
        asked = {qid: texts[qid] for qid in judged if qid in texts}
        if url is not None:
            _evaluate_url(url, collection, asked, judged, min(k, MAX_K), write_run, as_json, progress)
        else:
            assert index is not None  # exactly one mode is given
            _evaluate_index(
                index, asked, judged, k, write_run, report, as_json, progress, ranker, query_encoder
            )


def _evaluate_index(
    index: Path, asked: dict[str, str], judged: dict[str, dict[str, int]], k: int, write_run: Path | None,
    report: Path | None, as_json: bool, progress: bool, ranker: Path | None, query_encoder: str,
) -> None:  # fmt: skip
    from indexer.schemas import SUPPLIED
    from jobs.evaluation import evaluate_runs, format_means, unique_contribution
    from jobs.evaluation import write_run as write_trec_run
    from jobs.evaluation.runner import run_queries
    from retrieval.pipeline import PipelineConfig
    from retrieval.service import CollectionService

    service = CollectionService.open(
        index, config=PipelineConfig(branch_limit=k), ranker=ranker, query_encoder=query_encoder
    )
    if service.ranker.error:
        fail(service.ranker.error)
    runs = run_queries(service, asked, k=k, progress=progress)
    named = {"merged": runs.merged, **dict(sorted(runs.branches.items()))}
    table = _means(evaluate_runs(named, judged, SEARCH_METRICS))
    unique = unique_contribution(runs.branches, judged, min(k, 100))
    if write_run is not None:
        write_trec_run(write_run, runs.merged, tag=f"searchrec-{service.version}")
    if report is not None:
        from jobs.evaluation.report import write_report

        write_report(report, runs.branches, runs.merged, judged, metrics=SEARCH_METRICS, unique_k=min(k, 100))
    encoder = service.collection.encoder
    summary = {"queries": len(asked), "version": service.version, "k": k, "metrics": table}
    summary["query_encoder"] = encoder.kind
    summary["scorer"] = service.ranker.as_dict()
    summary["unique_relevant_top100"] = unique
    summary["degraded"] = dict(runs.degraded)
    answered = dict(getattr(service.pipeline.scorer, "counts", {}))
    summary["answered"] = answered
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    scorer = service.ranker
    embedded = f"queries embedded by {encoder.kind}"
    if encoder.kind == SUPPLIED:
        embedded = "no query encoder: the dense branch is off"
    typer.echo(
        f"{len(asked)} queries, index version {service.version} (built with {service.collection.built_with}, "
        f"{embedded}), depth {k}, merged order by "
        f"{scorer.scorer}" + (f" (ranker {scorer.version})" if scorer.path else "")
    )
    typer.echo(format_means(table, SEARCH_METRICS))
    if answered:
        counts = ", ".join(f"{name} {count}" for name, count in answered.items())
        typer.echo(f"queries by how the ranker answered: {counts}")
    typer.echo(
        "relevant found only by this branch (top 100): " + ", ".join(f"{b} {n}" for b, n in unique.items())
    )
    if report is not None:
        typer.echo(f"report written to {report / 'report.html'}")


def _evaluate_url(
    url: str, collection: str | None, asked: dict[str, str], judged: dict[str, dict[str, int]], k: int,
    write_run: Path | None, as_json: bool, progress: bool,
) -> None:  # fmt: skip
    """The merged ranking exactly as `POST /search` returns it, evaluated like an in-process run."""
    from collections import Counter

    import httpx
    from tqdm import tqdm

    from jobs.evaluation import evaluate_runs, format_means
    from jobs.evaluation import write_run as write_trec_run

    endpoint = url.rstrip("/") + (f"/collections/{collection}/search" if collection else "/search")
    merged: dict[str, list[str]] = {}
    answered_by: Counter[tuple[str, str, str]] = Counter()
    with httpx.Client(timeout=60) as client:
        for qid, text in tqdm(asked.items(), "queries", disable=not progress, unit="q"):
            try:
                response = client.post(endpoint, json={"query": text, "k": k})
            except httpx.TransportError as error:
                raise ValueError(f"cannot reach {endpoint}: {error}") from None
            if response.is_error:
                status, body = response.status_code, response.text
                raise ValueError(f"{endpoint} answered {status} for query {qid}: {body}")
            answer = response.json()
            merged[qid] = [hit["id"] for hit in answer["results"]]
            answered_by[(answer["index_version"], answer["scorer"], answer.get("scorer_version", ""))] += 1
    table = _means(evaluate_runs({"merged": merged}, judged, SEARCH_METRICS))
    if write_run is not None:
        write_trec_run(write_run, merged, tag="searchrec-http")
    served = [
        {"index_version": v, "scorer": s, "scorer_version": r, "queries": n}
        for (v, s, r), n in sorted(answered_by.items())
    ]
    if as_json:
        typer.echo(json.dumps({"queries": len(asked), "url": endpoint, "k": k, "served_by": served,
                               "metrics": table}, indent=2))  # fmt: skip
        return
    typer.echo(f"{len(asked)} queries through {endpoint}, depth {k}; answered by {served}")
    typer.echo(format_means(table, SEARCH_METRICS))


def _evaluate_file(run_path: Path, qrels_path: Path, as_json: bool) -> None:
    from jobs.evaluation import evaluate_runs, format_means, read_qrels, read_run

    # Not evaluate_run_files: it reads the qrels first, and a bad run file is reported before bad qrels.
    table = _means(evaluate_runs({run_path.stem: read_run(run_path)}, read_qrels(qrels_path), SEARCH_METRICS))
    typer.echo(json.dumps({"metrics": table}, indent=2) if as_json else format_means(table, SEARCH_METRICS))


def _compare(paths: tuple[Path, Path], qrels_path: Path, as_json: bool) -> None:
    from jobs.evaluation import (
        evaluate_runs,
        most_changed_queries,
        paired_randomization_test,
        read_qrels,
        read_run,
    )

    # Keyed A and B, not by file name: the two files may share a name in different folders.
    judged = read_qrels(qrels_path)
    evaluations = evaluate_runs({"a": read_run(paths[0]), "b": read_run(paths[1])}, judged, SEARCH_METRICS)
    per_query = [evaluations["a"].per_query, evaluations["b"].per_query]
    tests = {m: paired_randomization_test(per_query[0], per_query[1], m) for m in SEARCH_METRICS}
    changed = most_changed_queries(per_query[0], per_query[1], COMPARE_METRIC, n=10)
    if as_json:
        out = {
            "a": str(paths[0]),
            "b": str(paths[1]),
            "tests": {m: {"mean_a": t.mean_a, "mean_b": t.mean_b, "delta": t.delta, "p_value": t.p_value}
                      for m, t in tests.items()},
            "most_changed": [{"qid": c.qid, "a": c.a, "b": c.b} for c in changed],
        }  # fmt: skip
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"A = {paths[0]}\nB = {paths[1]}\n{'metric':<12}{'A':>10}{'B':>10}{'B-A':>10}{'p':>10}")
    for metric, t in tests.items():
        typer.echo(f"{metric:<12}{t.mean_a:>10.4f}{t.mean_b:>10.4f}{t.delta:>+10.4f}{t.p_value:>10.4f}")
    typer.echo(f"queries that changed most on {COMPARE_METRIC}:")
    for c in changed:
        typer.echo(f"  {c.qid:<12} {c.a:.4f} -> {c.b:.4f} ({c.delta:+.4f})")


def _means(evaluations: Mapping[str, RunEvaluation]) -> dict[str, dict[str, float]]:
    """Each run's mean per metric: what --json prints and the table shows."""
    return {name: evaluation.mean for name, evaluation in evaluations.items()}
