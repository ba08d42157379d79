"""Evaluate one or several runs against qrels: mean tables, PR and recall curves, unique contributions."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jobs.evaluation.datasets import (
    check_qrels_match_queries,
    check_run_docids,
    read_qrels,
    read_queries,
    read_run,
)
from ranker.metrics import ELEVEN_RECALL_LEVELS, Run, evaluate_run, interpolated_precision, ranked_lists

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "recall@10", "recall@100", "map@100", "mrr@10", "p@10")
RECALL_CURVE_KS: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass(frozen=True, slots=True)
class RunEvaluation:
    """A run's metric values: per query (every judged query) and their means."""

    name: str
    per_query: dict[str, dict[str, float]]
    mean: dict[str, float]


def evaluate_runs(
    runs: Mapping[str, Run], qrels: Mapping[str, Mapping[str, int]], metrics: Iterable[str] = DEFAULT_METRICS
) -> dict[str, RunEvaluation]:
    """Evaluate each named run with `ranker.metrics.evaluate_run` (trec_eval -c conventions)."""
    metrics = list(metrics)
    out: dict[str, RunEvaluation] = {}
    for name, run in runs.items():
        per_query, mean = evaluate_run(run, qrels, metrics)
        out[name] = RunEvaluation(name=name, per_query=per_query, mean=mean)
    return out


def evaluate_run_files(
    run_paths: Sequence[Path],
    qrels_path: Path,
    metrics: Iterable[str] = DEFAULT_METRICS,
    queries_path: Path | None = None,
    corpus_ids: Collection[str] | None = None,
) -> dict[str, RunEvaluation]:
    """Read TREC run files and a qrels file and evaluate every run, named by its file stem.

    With `queries_path`, qrels whose query ids match none of the queries are refused; with `corpus_ids`,
    runs that return unknown doc ids are refused.
    """
    qrels = read_qrels(qrels_path)
    if queries_path is not None:
        check_qrels_match_queries(qrels, read_queries(queries_path), qrels_path, queries_path)
    runs: dict[str, Run] = {}
    for path in run_paths:
        name = Path(path).stem
        if name in runs:
            raise ValueError(f"two run files share the name {name!r}: rename one of {list(run_paths)}")
        runs[name] = read_run(path)
        if corpus_ids is not None:
            check_run_docids(runs[name], corpus_ids, run_name=str(path))
    return evaluate_runs(runs, qrels, metrics)


def format_table(evaluations: Mapping[str, RunEvaluation], metrics: Sequence[str] | None = None) -> str:
    """A plain-text table, one row per run and one column per metric (4 decimals)."""
    return format_means({name: evaluation.mean for name, evaluation in evaluations.items()}, metrics)


def format_means(means: Mapping[str, Mapping[str, float]], metrics: Sequence[str] | None = None) -> str:
    """`format_table` of `{run: {metric: mean}}`; the columns default to the first run's metrics."""
    if not means:
        return ""
    columns = list(metrics) if metrics is not None else list(next(iter(means.values())))
    width = max(len("run"), *(len(name) for name in means))
    header = "run".ljust(width) + "".join(f"  {metric:>10}" for metric in columns)
    rows = [
        name.ljust(width) + "".join(f"  {values[metric]:>10.4f}" for metric in columns)
        for name, values in means.items()
    ]
    return "\n".join([header, *rows])


def pr_curve(run: Run, qrels: Mapping[str, Mapping[str, int]]) -> np.ndarray:
    """Mean interpolated precision at recall 0, 0.1, ..., 1 over judged queries (missing queries give 0)."""
    lists = ranked_lists(run)
    if not qrels:
        return np.zeros(len(ELEVEN_RECALL_LEVELS))
    curves = [interpolated_precision(lists.get(qid, []), judged) for qid, judged in qrels.items()]
    return np.mean(curves, axis=0)


def recall_curve(
    run: Run, qrels: Mapping[str, Mapping[str, int]], ks: Sequence[int] = RECALL_CURVE_KS
) -> dict[int, float]:
    """Mean recall@k for each k."""
    _, mean = evaluate_run(run, qrels, [f"recall@{k}" for k in ks])
    return {k: mean[f"recall@{k}"] for k in ks}


def unique_contribution(
    branches: Mapping[str, Run], qrels: Mapping[str, Mapping[str, int]], k: int
) -> dict[str, int]:
    """For each branch, how many relevant (qid, docid) pairs in its top k no other branch has in its top k."""
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    found: dict[str, set[tuple[str, str]]] = {}
    for name, run in branches.items():
        lists = ranked_lists(run)
        found[name] = {
            (qid, doc)
            for qid, judged in qrels.items()
            for doc in lists.get(qid, [])[:k]
            if judged.get(doc, 0) > 0
        }
    out: dict[str, int] = {}
    for name, pairs in found.items():
        others = set().union(*(other for other_name, other in found.items() if other_name != name))
        out[name] = len(pairs - others)
    return out
