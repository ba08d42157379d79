"""Latency of the learned rankers: scoring 100 merged candidates, as the service does it.

Loads the ranker artifacts `make rankers` trains (SciFact search, MovieLens recommendation) and the
collections they serve. For each request it takes the first 100 merged candidates the pipeline hands its
scorer, then times `LearnedScorer.score` (features + model, what a request pays): on first sight of the
items (empty per-row caches), warm, and split into features and model. The search requests carry the query
embedding the dense branch computed (as served); a row without it shows what encoding the query again
costs. Last, the whole in-process `/search` pipeline with and without the ranker. Prints markdown tables
(milliseconds) and the machine.

Usage: .venv/bin/python bench/ranker_latency.py [--requests 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import cpu_model, load_average, usable_cores, versions

from jobs.evaluation import read_qrels, read_queries
from ranker.learned import LearnedScorer, load_ranker
from ranker.scoring import Candidate, RankingContext
from ranker.training import CandidateRecorder
from retrieval.candidates import SearchQuery
from retrieval.service import CollectionService

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = 100
Request = tuple[RankingContext, Sequence[Candidate]]
T = TypeVar("T")


def machine() -> str:
    return (
        f"{cpu_model()}; {usable_cores()} usable cores; Python {platform.python_version()}; "
        f"{versions('numpy', 'lightgbm', 'torch')}; load average {load_average()} while measuring"
    )


def row(label: str, seconds: list[float]) -> str:
    p50, p99 = np.percentile(np.asarray(seconds) * 1000, [50, 99])
    return f"| {label} | {p50:.2f} | {p99:.2f} |"


def timed(call: Callable[..., T], *args: object) -> tuple[float, T]:
    """Seconds ``call(*args)`` took, and what it returned."""
    start = time.perf_counter()
    result = call(*args)
    return time.perf_counter() - start, result


def recorded(service: CollectionService, queries: list[SearchQuery]) -> list[Request]:
    """The context and first 100 merged candidates each query hands the scorer."""
    recorder = CandidateRecorder()
    service.pipeline.scorer = recorder
    requests = []
    for query in queries:
        service.run(query)
        context, candidates = recorder.take()
        if context is not None and len(candidates) >= CANDIDATES:
            requests.append((context, candidates[:CANDIDATES]))
    return requests


def time_scorer(path: Path, service: CollectionService, requests: list[Request], title: str) -> None:
    branches = [source.name for source in service.pipeline.sources]
    fresh: LearnedScorer = load_ranker(path, service.collection, branches=branches)
    cold = [timed(fresh.score, context, candidates)[0] for context, candidates in requests]
    warm = [timed(fresh.score, context, candidates)[0] for context, candidates in requests]
    features = [timed(fresh.features, context, candidates) for context, candidates in requests]
    model = [timed(fresh.model.predict, matrix)[0] for _, matrix in features]
    print(f"### {title}: {fresh.name} ranker {fresh.version}, {len(fresh.feature_names)} features\n")
    print(f"{len(requests)} requests of {CANDIDATES} candidates; milliseconds per request.\n")
    print("| scoring 100 candidates | p50 | p99 |\n| --- | --- | --- |")
    print(row("score (features + model), first sight of the items", cold))
    print(row("score (features + model), warm", warm))
    print(row("features alone, warm", [took for took, _ in features]))
    print(row("model alone", model))
    if any(context.query_vectors for context, _ in requests):
        bare = [(dataclasses.replace(c, query_vectors=None), cands) for c, cands in requests]
        again = [timed(fresh.score, *r)[0] for r in bare]
        print(row("score, warm, query encoded again by the scorer", again))
    print()


def pipeline_latency(index: Path, ranker: Path, queries: list[SearchQuery]) -> None:
    """The whole in-process pipeline (recall, merge, score) per request, with and without the ranker."""
    print("### The whole `/search` pipeline in process (SciFact test queries)\n")
    print("| scorer | p50 | p99 |\n| --- | --- | --- |")
    for label, path in (("fusion", None), ("learned ranker", ranker)):
        service = CollectionService.open(index, ranker=path)
        for query in queries[:20]:
            service.run(dataclasses.replace(query, query_vectors={}))  # warm the caches
        took = [service.run(dataclasses.replace(q, query_vectors={})).took_ms / 1000 for q in queries]
        print(row(label, took))
        service.close()
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "scifact")
    parser.add_argument("--ranker", type=Path, default=ROOT / "rankers" / "scifact")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "scifact")
    parser.add_argument("--movies", type=Path, default=ROOT / "indexes" / "movies")
    parser.add_argument("--movies-ranker", type=Path, default=ROOT / "rankers" / "movies")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    texts = read_queries(args.data / "queries.jsonl")
    tests = sorted(read_qrels(args.data / "qrels" / "test.tsv"))[: args.requests]
    queries = [SearchQuery(text=texts[qid], k=10) for qid in tests]
    service = CollectionService.open(args.index)
    time_scorer(args.ranker, service, recorded(service, queries), "Search, SciFact test queries")
    service.close()

    movies = CollectionService.open(args.movies)
    users = sorted(movies.collection.behaviour.users)[: args.requests]
    asks = [movies.recommendation(10, user_id=user) for user in users]
    time_scorer(args.movies_ranker, movies, recorded(movies, asks), "Recommendation, MovieLens users")
    movies.close()

    pipeline_latency(args.index, args.ranker, queries)
    print(f"Machine: {machine()}")


if __name__ == "__main__":
    main()
