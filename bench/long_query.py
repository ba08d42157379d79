"""Latency of long queries (query by document), in process, against one index root.

Each query is a pasted document: the collection's own stored texts, from a seeded random row on, joined
until ``--chars`` characters (20,000 by default). For each it times BM25 alone (analysis, pruning to the
`indexer.fields.MAX_QUERY_TERMS` most informative terms, search), BM25 on every term (what pruning saves),
the transformer encoding (first 256 tokens) and the whole in-process `/search` pipeline; short queries (the
first 100 characters of the same texts) through the pipeline give the baseline. Prints a markdown table of
milliseconds and the machine.

Usage: .venv/bin/python bench/long_query.py [INDEX_ROOT] [--queries 50] [--chars 20000] [--k 10]
(INDEX_ROOT defaults to indexes/scifact, which `make index` builds.)
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import cpu_model, load_average, usable_cores, versions

from indexer.artifact import ArtifactError
from indexer.config import RESERVED_RECORD_KEYS
from indexer.fields import MAX_QUERY_TERMS
from retrieval.candidates import SearchQuery
from retrieval.service import CollectionService

ROOT = Path(__file__).resolve().parents[1]
SHORT_CHARS = 100
SKIPPED = RESERVED_RECORD_KEYS | {"id"}  # stored fields that are not text
WARM_UP = 3


def machine() -> str:
    return (
        f"{cpu_model()}; {usable_cores()} usable cores; Python {platform.python_version()}; "
        f"{versions('numpy', 'torch', 'onnxruntime')}; load average {load_average()} while measuring"
    )


def document_queries(service: CollectionService, n: int, chars: int, seed: int) -> list[str]:
    """`n` texts of `chars` characters, each the stored texts of consecutive rows from a random start."""
    collection = service.collection
    rng = np.random.default_rng(seed)
    queries = []
    for start in rng.integers(0, len(collection), n).tolist():
        parts, total, row = [], 0, start
        while total < chars and row < start + len(collection):
            record = collection.docstore.get(collection.ids[row % len(collection)]) or {}
            text = " ".join(v for k, v in record.items() if k not in SKIPPED and isinstance(v, str))
            parts.append(text)
            total += len(text) + 1
            row += 1
        queries.append(" ".join(parts)[:chars])
    return queries


def timings(call: Callable[[str], object], texts: list[str]) -> list[float]:
    """Seconds `call(text)` took for each text, after a few untimed warm-up calls.

    Calls run on a worker thread, as the service's branches do: on a loaded 2-core machine the torch
    encoder measured several times slower on the main thread than on a worker.
    """

    def timed(text: str) -> float:
        start = time.perf_counter()
        call(text)
        return time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=1) as worker:
        for text in texts[:WARM_UP]:
            worker.submit(call, text).result()
        return [worker.submit(timed, text).result() for text in texts]


def row(label: str, seconds: list[float]) -> str:
    p50, p99 = np.percentile(np.asarray(seconds) * 1000, [50, 99])
    return f"| {label} | {p50:.2f} | {p99:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path, nargs="?", default=ROOT / "indexes" / "scifact")
    parser.add_argument("--queries", type=int, default=50, help="long queries to time")
    parser.add_argument("--chars", type=int, default=20_000, help="characters per long query")
    parser.add_argument("--k", type=int, default=10, help="results per query")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    try:
        service = CollectionService.open(args.index)
    except (ArtifactError, OSError, ValueError) as error:
        parser.error(f"cannot open index root {args.index}: {error} (make index builds indexes/scifact)")
    collection, inverted = service.collection, service.collection.inverted
    texts = document_queries(service, args.queries, args.chars, args.seed)
    terms = [inverted.query_terms(text) for text in texts]
    raw = [inverted.analyze(text) for text in texts]
    primary = inverted.analyzers[0]
    distinct = np.median([len(set(t[primary])) for t in raw])

    pruned = dict(zip(texts, terms, strict=True))
    unpruned = dict(zip(texts, raw, strict=True))
    short = [text[:SHORT_CHARS] for text in texts]

    def pipeline(text: str) -> object:
        return service.run(SearchQuery(text=text, k=args.k))

    steps: list[tuple[str, Callable[[str], object], list[str]]] = [
        ("analyse and prune (`query_terms`)", inverted.query_terms, texts),
        (
            "BM25 alone: analyse, prune, search",
            lambda t: inverted.search(inverted.query_terms(t), args.k),
            texts,
        ),
        ("BM25 search, pruned terms", lambda t: inverted.search(pruned[t], args.k), texts),
        ("BM25 search, every term (no pruning)", lambda t: inverted.search(unpruned[t], args.k), texts),
        (
            f"query encoding ({collection.encoder.name}, cut to its token limit)",
            lambda t: collection.encoder.encode_queries([t]),
            texts,
        ),
        ("whole pipeline (every branch, fusion)", pipeline, texts),
        (f"whole pipeline, first {SHORT_CHARS} characters only", pipeline, short),
    ]
    print(f"### {args.chars:,}-character queries: {collection.name} {collection.version}\n")
    print(
        f"{len(texts)} queries of {args.chars:,} characters (median {distinct:.0f} distinct terms under "
        f"`{primary}`, pruned to {MAX_QUERY_TERMS}), k = {args.k}, {len(collection):,} documents; "
        "milliseconds per query.\n"
    )
    print("| step | p50 | p99 |\n| --- | --- | --- |")
    for label, call, inputs in steps:
        print(row(label, timings(call, inputs)))
    print(f"\nMachine: {machine()}")
    service.close()


if __name__ == "__main__":
    main()
