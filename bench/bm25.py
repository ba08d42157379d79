"""Benchmark the searchrec BM25 inverted index against the bm25s library.

Two corpora: SciFact (english analyzer, all test+train queries) and a synthetic Zipf corpus generated from a
seed (``--docs`` documents of 50-150 tokens over a ``--vocab`` term vocabulary with exponent ``--zipf``;
queries of 2-6 terms drawn from the same distribution). Both engines get the same token lists and
k1/b. Prints a markdown table: build time, index size on disk, queries/second one query at a time and
as one batch, top-10 overlap with bm25s, and the share of queries whose top-10 score lists are equal.

Usage: .venv/bin/python bench/bm25.py [--docs 1000000] [--queries 1000] [--skip-scifact] [--skip-zipf]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bm25s
from machine import cpu_model, load_average, peak_rss_gib, usable_cores

from indexer.analysis import make_analyzer
from indexer.inverted import InvertedIndex

SCIFACT = Path(__file__).resolve().parents[1] / "data" / "scifact"
Tokens = list[list[str]]
Results = list[tuple[np.ndarray, np.ndarray]]


def scifact() -> tuple[Tokens, Tokens]:
    """SciFact titles+abstracts and queries through the english analyzer."""
    analyzer = make_analyzer("english")
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as f:
        docs = [analyzer(d["title"] + " " + d["text"]) for d in map(json.loads, f)]
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as f:
        queries = [analyzer(q["text"]) for q in map(json.loads, f)]
    return docs, queries


def zipf(n_docs: int, vocab: int, exponent: float, n_queries: int, seed: int) -> tuple[Tokens, Tokens]:
    """Documents of 50-150 Zipf-distributed terms and 2-6 term queries from the same distribution."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(1.0 / np.arange(1, vocab + 1) ** exponent)
    cdf /= cdf[-1]
    words = np.array([f"t{i}" for i in range(vocab)], dtype=object)
    lens = rng.integers(50, 151, n_docs)
    ends = np.cumsum(lens).tolist()
    docs: Tokens = []
    chunk = 100_000  # draw in chunks to keep the temporary arrays small
    for lo in range(0, n_docs, chunk):
        hi = min(lo + chunk, n_docs)
        base = ends[lo - 1] if lo else 0
        terms = words[np.searchsorted(cdf, rng.random(ends[hi - 1] - base), side="right")]
        docs.extend(
            terms[a - base : b - base].tolist()
            for a, b in zip([base, *ends[lo : hi - 1]], ends[lo:hi], strict=True)
        )
    q_lens = rng.integers(2, 7, n_queries)
    queries = [words[np.searchsorted(cdf, rng.random(n), side="right")].tolist() for n in q_lens]
    return docs, queries


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Best wall-clock and best CPU (process) seconds over ``repeats`` runs, and the last result."""
    best_wall, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, out


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_ours(docs: Tokens, queries: Tokens, k: int, repeats: int, workdir: Path) -> tuple[dict, Results]:
    t0 = time.perf_counter()
    index = InvertedIndex.build(docs)
    build_s = time.perf_counter() - t0
    index.save(workdir / "ours")
    del index
    gc.collect()
    index = InvertedIndex.load(workdir / "ours", mmap=True)
    index.search_batch(queries[:20], k)  # warm up
    single = best_time(lambda: [index.search(q, k) for q in queries], repeats)
    batch = best_time(lambda: index.search_batch(queries, k), repeats)
    row = {"build_s": build_s, "size": dir_size(workdir / "ours"), **qps(len(queries), single, batch)}
    results = batch[2]
    return row, results


def run_bm25s(docs: Tokens, queries: Tokens, k: int, repeats: int, workdir: Path) -> tuple[dict, Results]:
    t0 = time.perf_counter()
    retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    retriever.index(docs, show_progress=False)
    build_s = time.perf_counter() - t0
    retriever.save(str(workdir / "bm25s"))
    retriever.retrieve(queries[:20], k=k, show_progress=False)  # warm up
    single = best_time(lambda: [retriever.retrieve([q], k=k, show_progress=False) for q in queries], repeats)
    batch = best_time(lambda: retriever.retrieve(queries, k=k, show_progress=False), repeats)
    res = batch[2]
    results = []
    for rows, scores in zip(res.documents, res.scores, strict=True):
        positive = scores > 0
        results.append((rows[positive], scores[positive]))
    row = {"build_s": build_s, "size": dir_size(workdir / "bm25s"), **qps(len(queries), single, batch)}
    return row, results


def qps(n: int, single: tuple[float, float, Any], batch: tuple[float, float, Any]) -> dict[str, float]:
    return {
        "qps_single": n / single[0],
        "qps_batch": n / batch[0],
        "cpu_qps_single": n / single[1],
        "cpu_qps_batch": n / batch[1],
    }


def agreement(ours: Results, ref: Results) -> tuple[float, float]:
    """Mean top-k overlap with the reference, and share of queries with equal score lists (1e-5)."""
    overlaps, equal = [], 0
    for (rows, scores), (ref_rows, ref_scores) in zip(ours, ref, strict=True):
        overlaps.append(
            len(set(rows.tolist()) & set(ref_rows.tolist())) / len(ref_rows) if len(ref_rows) else 1.0
        )
        equal += int(len(scores) == len(ref_scores) and np.allclose(scores, ref_scores, rtol=0, atol=1e-5))
    return float(np.mean(overlaps)), equal / len(ours)


def bench_corpus(name: str, docs: Tokens, queries: Tokens, args: argparse.Namespace) -> list[dict]:
    repeats = args.repeats if len(docs) < 100_000 else 1
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        ours_row, ours_res = run_ours(docs, queries, args.k, repeats, Path(tmp))
        gc.collect()
        ref_row, ref_res = run_bm25s(docs, queries, args.k, repeats, Path(tmp))
    overlap, equal = agreement(ours_res, ref_res)
    ours_row.update(overlap=overlap, equal=equal)
    ref_row.update(overlap=1.0, equal=1.0)
    meta = {"corpus": name, "docs": len(docs), "queries": len(queries)}
    return [{**meta, "engine": "searchrec InvertedIndex", **ours_row}, {**meta, "engine": "bm25s", **ref_row}]


def print_table(rows: list[dict]) -> None:
    head = (
        "| corpus | docs | queries | engine | build s | index MiB | QPS single | QPS batch "
        "| CPU-QPS single | CPU-QPS batch | top-10 overlap | equal scores |"
    )
    print(head)
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['corpus']} | {r['docs']:,} | {r['queries']:,} | {r['engine']} | {r['build_s']:.1f} "
            f"| {r['size'] / 2**20:.1f} | {r['qps_single']:,.0f} | {r['qps_batch']:,.0f} "
            f"| {r['cpu_qps_single']:,.0f} | {r['cpu_qps_batch']:,.0f} "
            f"| {r['overlap']:.4f} | {r['equal']:.4f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000, help="Zipf corpus size")
    parser.add_argument("--vocab", type=int, default=200_000)
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent")
    parser.add_argument("--queries", type=int, default=1000, help="number of Zipf queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (best of) for small corpora")
    parser.add_argument("--workdir", type=Path, default=None, help="where temporary indices are written")
    parser.add_argument("--skip-scifact", action="store_true")
    parser.add_argument("--skip-zipf", action="store_true")
    args = parser.parse_args()

    rows: list[dict] = []
    if not args.skip_scifact:
        rows += bench_corpus("SciFact", *scifact(), args)
    if not args.skip_zipf:
        docs, queries = zipf(args.docs, args.vocab, args.zipf, args.queries, args.seed)
        rows += bench_corpus(f"Zipf s={args.zipf} V={args.vocab:,}", docs, queries, args)
        del docs
    numba = "installed" if _has_numba() else "not installed"
    print(
        f"machine: {cpu_model()}, {usable_cores()} usable cores; numpy {np.__version__}; "
        f"bm25s {bm25s.__version__} backend=numpy (its default; numba {numba}); single-threaded; k={args.k}"
    )
    print(f"peak RSS {peak_rss_gib():.2f} GiB; load average {load_average()}")
    print("QPS = queries / best wall-clock time; CPU-QPS = queries / best process CPU time.\n")
    print_table(rows)


def _has_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
