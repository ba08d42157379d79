"""Latency of the learned ranker: scoring 100 candidates (features + model), for both model types.

Trains LambdaMART and the list-wise MLP on `--train` SciFact train queries run through the service's
pipeline (the same code as `searchrec train-ranker`), then scores the first 100 merged candidates of
`--requests` SciFact test queries. Each request is timed three ways: features with empty per-row caches
(first time the items are seen, the query embedded by the scorer), features again (warm caches, query
embedded), features with the query embedding handed over by the branch (`RankingContext.query_vectors`),
and the model's predict alone. Prints markdown tables (p50/p99 in milliseconds) and the machine.

Usage: .venv/bin/python bench/ranker_latency.py [--index indexes/scifact] [--train 300] [--requests 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ranker.features import CollectionView, FeatureExtractor, default_search_declaration
from ranker.features.declarations import resolve
from ranker.training import CandidateRecorder, collect_search_examples, featurize, split_keys, train_rankers
from retrieval.candidates import SearchQuery
from retrieval.evaluation import read_qrels, read_queries
from retrieval.pipeline import PipelineConfig
from retrieval.service import CollectionService

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = 100


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        cpu = names[0] if names else cpu
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("numpy", "lightgbm", "torch"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}; {os.cpu_count()} logical cores; Python {platform.python_version()}; {versions}; "
        f"load average {load} while measuring"
    )


def percentiles(samples: list[float]) -> str:
    ms = np.asarray(samples) * 1000
    return f"{np.percentile(ms, 50):.2f} | {np.percentile(ms, 99):.2f}"


def timed(call: Callable, *args: object) -> tuple[float, object]:
    start = time.perf_counter()
    out = call(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "scifact")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "scifact")
    parser.add_argument("--train", type=int, default=300, help="Training queries (SciFact train).")
    parser.add_argument("--requests", type=int, default=300, help="Timed requests (SciFact test queries).")
    args = parser.parse_args()

    recorder = CandidateRecorder()
    service = CollectionService.open(args.index, scorer=recorder, config=PipelineConfig(branch_limit=100))
    branches = [s.name for s in service.pipeline.sources]
    view = CollectionView(service.collection)
    extractor = FeatureExtractor(
        resolve(default_search_declaration(), view, branches), view, branches=branches
    )

    def run(text: str, only: frozenset[str] | None) -> tuple:
        service.run(SearchQuery(text=text, k=10, branches=only))
        return recorder.take()

    texts = read_queries(args.data / "queries.jsonl")
    judged = read_qrels(args.data / "qrels" / "train.tsv")
    keys = sorted(q for q in judged if q in texts)[: args.train]
    train_keys, valid_keys = split_keys(keys, 0.2, seed=0)
    collect = collect_search_examples
    train = featurize(
        extractor, collect(run, extractor.ids_of, texts, judged, keys=train_keys, progress=False)
    )
    valid = featurize(
        extractor, collect(run, extractor.ids_of, texts, judged, keys=valid_keys, progress=False)
    )
    models = train_rankers(train, valid, seed=0).models

    tests = read_qrels(args.data / "qrels" / "test.tsv")
    requests = []
    for qid in sorted(tests)[: args.requests]:
        context, candidates = run(texts[qid], None)
        requests.append((context, candidates[:CANDIDATES]))
    cold, warm, handed, predict = [], [], [], {kind: [] for kind in models}
    fresh = FeatureExtractor(extractor.declaration, CollectionView(service.collection), branches=branches)
    for context, candidates in requests:
        cold.append(timed(fresh.extract, context, candidates)[0])
        seconds, matrix = timed(fresh.extract, context, candidates)
        warm.append(seconds)
        vector = service.collection.encoder.encode([context.text])[0]
        given = dataclasses.replace(context, query_vectors={"dense": vector})
        handed.append(timed(fresh.extract, given, candidates)[0])
        for kind, model in models.items():
            predict[kind].append(timed(model.predict, matrix)[0])

    print(f"Scoring {CANDIDATES} candidates of {len(requests)} SciFact test requests with")
    print(f"{len(extractor.names)} features ({args.train} training queries); milliseconds per request.\n")
    print("| step | p50 | p99 |\n| --- | --- | --- |")
    print(f"| features, first sight of the items (query embedded by the scorer) | {percentiles(cold)} |")
    print(f"| features, warm caches (query embedded by the scorer) | {percentiles(warm)} |")
    print(f"| features, warm caches, query embedding handed over | {percentiles(handed)} |")
    for kind, samples in predict.items():
        print(f"| {kind} predict | {percentiles(samples)} |")
    print("\n| model | features + model, warm caches, query embedded: p50 | p99 |\n| --- | --- | --- |")
    for kind, samples in predict.items():
        total = [a + b for a, b in zip(warm, samples, strict=True)]
        print(f"| {kind} | {percentiles(total)} |")
    print(f"\nMachine: {machine()}")
    service.close()


if __name__ == "__main__":
    main()
