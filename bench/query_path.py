"""One search, end to end and stage by stage, in process (SciFact test queries with the learned ranker).

Each measurement runs in a fresh process that imports the code of one checkout: this one, and with
``--baseline PATH`` another checkout of the repository (e.g. ``main``), so before and after are measured in
the same run, alternating (rounds go A B, B A, ...) so that a change in the machine's load falls on both.
A process opens the collection with its ranker as the service does, warms up on 20 *train* queries, then:

- **end to end**: `CollectionService.search` plus the `SearchResponse` the route builds and serialises, for
  every test query once (each text is new to the process, so no query cache helps);
- **stages**: the same queries on a freshly opened service (warmed up alike, every cache as cold as the
  end-to-end run found it), with each stage called on its own, in sequence, on one thread (no pipeline,
  no threads): analyse, BM25, query encoding, ANN search, Word2Vec, fusion, ranker features, model,
  docstore fetch of the hits, response. The end-to-end median minus the stage medians is what the
  pipeline adds around them (thread hand-offs, waiting, contention between branches), or saves by
  running branches side by side.

``--pooled`` adds a third measurement: this checkout with every branch in the thread pool
(`PipelineConfig(inline=False)`), which isolates what running the cheap branches inline changes.

``--cprofile N`` also prints cProfile's top functions over N stage-by-stage requests (one thread, so the
profiler sees every stage). Prints markdown: a table per measurement with the median over rounds, each
round's values, the load average around each process, and the machine.

Usage: .venv/bin/python bench/query_path.py [--baseline ../main] [--rounds 3] [--queries 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_model, load_average, usable_cores, versions

ROOT = Path(__file__).resolve().parents[1]
WARM_UP = 20
STAGES = [
    "analyze (query terms)",
    "bm25 search",
    "dense: encode query",
    "dense: ANN search",
    "w2v",
    "fusion",
    "ranker features",
    "ranker model",
    "docstore fetch (hits)",
    "response (schema + JSON)",
]


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Measure one checkout (`args.code`) in this process; return the timings as JSON-able values."""
    sys.path.insert(0, str(args.code))
    from retrieval.candidates import SearchQuery
    from retrieval.service import CollectionService

    try:  # evaluation moved from retrieval/ to jobs/; an older checkout compared against has it there
        from jobs.evaluation import read_qrels, read_queries
    except ImportError:
        from retrieval.evaluation import read_qrels, read_queries

    texts = read_queries(args.data / "queries.jsonl")
    tests = [texts[q] for q in sorted(read_qrels(args.data / "qrels" / "test.tsv"))][: args.queries]
    train = [texts[q] for q in sorted(read_qrels(args.data / "qrels" / "train.tsv"))][:WARM_UP]

    def fresh() -> Any:
        """A newly opened service, warmed up on train queries, with empty process-wide query caches."""
        service = CollectionService.open(args.index, ranker=args.ranker)
        if args.no_inline:
            service.pipeline.config = dataclasses.replace(service.pipeline.config, inline=False)
        for text in train:
            respond(service, SearchQuery(text=text, k=10))
        clear_query_caches(service)
        return service

    load_before = load_average()
    service = fresh()
    e2e, pipeline_ms, branch_ms = [], [], []
    cpu_start = time.process_time()
    for text in tests:
        start = time.perf_counter()
        answer = respond(service, SearchQuery(text=text, k=10))
        e2e.append((time.perf_counter() - start) * 1000)
        pipeline_ms.append(answer.took_ms)
        branch_ms.append(answer.branch_ms)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / len(tests)
    repeated = []  # the first 100 texts again: what a query cache saves on a repeated text
    for text in tests[:100]:
        start = time.perf_counter()
        respond(service, SearchQuery(text=text, k=10))
        repeated.append((time.perf_counter() - start) * 1000)
    encoder = f"{service.collection.encoder.name} ({service.collection.encoder.kind})"
    service.close()
    service = fresh()
    stages = stage_times(service, tests)
    service.close()
    profile = ""
    if args.cprofile:
        service = fresh()
        profile = cprofile(service, tests[: args.cprofile])
        service.close()
    branches = sorted({name for times in branch_ms for name in times})
    return {
        "encoder": encoder,
        "load": f"{load_before} / {load_average()}",
        "e2e": e2e,
        "repeated": repeated,
        "cpu_ms": cpu_ms,
        "pipeline": pipeline_ms,
        "branch": {b: float(np.median([t[b] for t in branch_ms if b in t])) for b in branches},
        "stages": stages,
        "profile": profile,
    }


def respond(service: Any, query: Any) -> Any:
    """What the `/search` route does with a query: search, then the response model as JSON."""
    from api.schemas import SearchHit, SearchResponse

    answer = service.search(query)
    SearchResponse(
        request_id="bench",
        results=[
            SearchHit(id=h.id, score=h.score, title=h.title, branches=h.branches, features=h.features)
            for h in answer.hits
        ],
        collection=service.collection.name,
        index_version=answer.version,
        scorer=answer.scorer,
        scorer_version=answer.scorer_version,
        degraded=answer.degraded,
        took_ms=answer.took_ms,
    ).model_dump_json()
    return answer


def clear_query_caches(service: Any) -> None:
    """Empty the query caches the checkout has (none before they existed)."""
    collection = service.collection
    for owner in (collection.inverted, collection.encoder):
        cache = getattr(owner, "query_cache", None)
        if cache is not None:
            cache.clear()


def stage_times(service: Any, texts: list[str]) -> dict[str, float]:
    """Median milliseconds of each stage over `texts`, each stage called on its own on this thread."""
    samples: dict[str, list[float]] = {name: [] for name in STAGES}
    for text in texts:
        for name, took in one_request(service, text).items():
            samples[name].append(took)
    return {name: float(np.median(values)) for name, values in samples.items() if values}


def one_request(service: Any, text: str) -> dict[str, float]:
    """The stages of one search, timed one by one (milliseconds)."""
    from api.schemas import SearchHit, SearchResponse
    from ranker.scoring import RankingContext
    from retrieval.candidates import BranchResult, SearchQuery

    collection, pipeline = service.collection, service.pipeline
    limit = pipeline.config.branch_limit
    took: dict[str, float] = {}

    def timed(name: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = call(*args, **kwargs)
        took[name] = (time.perf_counter() - start) * 1000
        return result

    terms = timed("analyze (query terms)", collection.query_terms, text)
    rows, scores = timed("bm25 search", collection.inverted.search, terms, limit)
    results = {"bm25": BranchResult("bm25", rows, scores)}
    vector = timed("dense: encode query", collection.encoder.encode_queries, [text])
    rows, scores = timed("dense: ANN search", collection.vectors.search, vector, limit)
    results["dense"] = BranchResult("dense", rows[0][rows[0] >= 0], scores[0][rows[0] >= 0])
    if collection.text_vectors is not None:
        rows, scores = timed("w2v", collection.text_vectors.search, text, limit)
        results["w2v"] = BranchResult("w2v", rows, scores)
    candidates = timed("fusion", pipeline.merge, results)
    query = SearchQuery(text=text, k=10, query_vectors={"dense": vector[0]})
    scorer = pipeline.scorer
    if hasattr(scorer, "extractor"):
        head = candidates[: scorer.max_candidates] if scorer.max_candidates else candidates
        matrix = timed("ranker features", scorer.extractor.extract, RankingContext.of(query), head)
        timed("ranker model", scorer.model.predict, matrix)
    top = candidates[:10]
    ids = collection.external_ids_of([c.row for c in top])
    stored = timed("docstore fetch (hits)", collection.docstore.get_many, ids)

    def response() -> str:
        hits = [
            SearchHit(id=i, score=c.fused_score, title=(d or {}).get("title", ""), branches=dict(c.ranks))
            for i, d, c in zip(ids, stored, top, strict=True)
        ]
        return SearchResponse(
            request_id="bench",
            results=hits,
            collection=collection.name,
            index_version=collection.version,
            scorer=scorer.name,
            took_ms=0.0,
        ).model_dump_json()

    timed("response (schema + JSON)", response)
    return took


def cprofile(service: Any, texts: list[str]) -> str:
    """cProfile's top functions (by own time) over the stage-by-stage requests of `texts`."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for text in texts:
        one_request(service, text)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    return out.getvalue()


def run_child(code: Path, args: argparse.Namespace, *, pooled: bool = False) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--child", "--code", str(code), "--index", str(args.index),
        "--ranker", str(args.ranker), "--data", str(args.data), "--queries", str(args.queries),
        "--cprofile", str(args.cprofile), *(["--no-inline"] if pooled else []),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise SystemExit(f"measuring {code} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(runs: dict[str, list[dict[str, Any]]]) -> None:
    names = list(runs)
    print("### One search in process: end to end\n")
    print(f"{len(runs[names[0]][0]['e2e'])} SciFact test queries, k = 10, learned ranker; milliseconds.\n")
    print(
        "| checkout | query encoder | p50 | p99 | CPU ms / search | pipeline p50 | repeated text p50 "
        "| rounds (p50) | load (1/5/15 min) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for name in names:
        p50s = [float(np.percentile(r["e2e"], 50)) for r in runs[name]]
        p99s = [float(np.percentile(r["e2e"], 99)) for r in runs[name]]
        pipe = [float(np.percentile(r["pipeline"], 50)) for r in runs[name]]
        again = [float(np.percentile(r["repeated"], 50)) for r in runs[name]]
        cpu = [r["cpu_ms"] for r in runs[name]]
        loads = "; ".join(r["load"] for r in runs[name])
        print(
            f"| {name} | {runs[name][0]['encoder']} | {np.median(p50s):.2f} | {np.median(p99s):.2f} "
            f"| {np.median(cpu):.2f} | {np.median(pipe):.2f} | {np.median(again):.2f} "
            f"| {' / '.join(f'{v:.1f}' for v in p50s)} | {loads} |"
        )
    for a in [n for n in names if n != "this checkout"]:
        b = "this checkout"
        ratio = [
            np.percentile(x["e2e"], 50) / np.percentile(y["e2e"], 50)
            for x, y in zip(runs[a], runs[b], strict=True)
        ]
        print(
            f"\np50 {a} / {b}: {np.median(ratio):.2f}x (per round {' / '.join(f'{r:.2f}x' for r in ratio)})"
        )
    print("\n### Stage by stage (medians of per-query milliseconds, median over rounds)\n")
    print("| stage | " + " | ".join(names) + " |\n| --- |" + " ---: |" * len(names))
    for stage in STAGES:
        values = [np.median([r["stages"].get(stage, np.nan) for r in runs[n]]) for n in names]
        print(f"| {stage} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    sums = [np.median([sum(r["stages"].values()) for r in runs[n]]) for n in names]
    print("| **sum of stages** | " + " | ".join(f"**{v:.2f}**" for v in sums) + " |")
    e2e = [np.median([np.percentile(r["e2e"], 50) for r in runs[n]]) for n in names]
    print("| end to end p50 (above) | " + " | ".join(f"{v:.2f}" for v in e2e) + " |")
    branch_names = sorted({b for n in names for r in runs[n] for b in r["branch"]})
    for branch in branch_names:
        values = [np.median([r["branch"].get(branch, np.nan) for r in runs[n]]) for n in names]
        print(f"| in the pipeline: {branch} branch | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    for name in names:
        if runs[name][0]["profile"]:
            print(f"\n#### cProfile, {name} (first round)\n\n```\n{runs[name][0]['profile']}```")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "scifact")
    parser.add_argument("--ranker", type=Path, default=ROOT / "rankers" / "scifact")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "scifact")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure in the same run")
    parser.add_argument("--cprofile", type=int, default=0, help="profile this many stage-by-stage requests")
    parser.add_argument("--pooled", action="store_true", help="also this checkout with every branch pooled")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-inline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    checkouts = {"this checkout": (ROOT, False)}
    if args.pooled:
        checkouts["this checkout, every branch pooled"] = (ROOT, True)
    if args.baseline is not None:
        baseline = args.baseline.resolve()
        checkouts = {f"baseline ({baseline.name})": (baseline, False), **checkouts}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in checkouts}
    order = list(checkouts.items())
    for round_ in range(args.rounds):
        for name, (code, pooled) in order if round_ % 2 == 0 else order[::-1]:
            print(f"round {round_ + 1}: {name}", file=sys.stderr, flush=True)
            runs[name].append(run_child(code, args, pooled=pooled))
    report(runs)
    print(
        f"\nMachine: {cpu_model()}; {usable_cores()} usable cores; Python {platform.python_version()}; "
        f"{versions('numpy', 'torch', 'onnxruntime', 'lightgbm')}; load average {load_average()} at the end"
    )


if __name__ == "__main__":
    main()
