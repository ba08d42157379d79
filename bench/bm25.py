"""Benchmark the searchrec BM25 inverted index against the bm25s library.

Two corpora: SciFact (english analyzer, all test+train queries) and a synthetic Zipf corpus generated from a
seed (``--docs`` documents of 50-150 tokens over a ``--vocab`` term vocabulary with exponent ``--zipf``;
queries of 2-6 terms drawn from the same distribution). Every engine gets the same token lists and
k1/b: ours, and bm25s on both of its backends (numpy, its default, and numba, its fastest), built once
and loaded twice, each searching single-threaded. All engines are loaded, then timed round-robin
(``--repeats`` rounds), so that load from other work on the machine hits them alike. Prints a markdown
table: build time, index size on disk, queries/second one query at a time and as one batch (medians,
wall clock and process CPU time), top-10 overlap with bm25s, and the share of queries whose top-10
score lists are bit-identical; then our speed as a ratio of each bm25s backend's.

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
from machine import cpu_model, load_average, peak_rss_gib, usable_cores, versions

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


Search = Callable[[], Any]


def interleaved_medians(engines: dict[str, tuple[Search, Search]], repeats: int) -> dict[str, dict]:
    """Time each engine's (one-by-one, batch) searches round-robin, ``repeats`` rounds, so that a change of
    load on a shared machine hits every engine alike; median wall and CPU seconds and the last results."""
    times: dict[str, dict[str, list[float]]] = {name: {} for name in engines}
    last: dict[str, Any] = {}
    for _ in range(repeats):
        for name, searches in engines.items():
            for mode, fn in zip(("single", "batch"), searches, strict=True):
                gc.collect()
                wall, cpu = time.perf_counter(), time.process_time()
                last[name, mode] = fn()
                times[name].setdefault(f"{mode}_wall", []).append(time.perf_counter() - wall)
                times[name].setdefault(f"{mode}_cpu", []).append(time.process_time() - cpu)
    return {
        name: {**{key: float(np.median(v)) for key, v in spans.items()}, "batch": last[name, "batch"]}
        for name, spans in times.items()
    }


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def prepare_ours(docs: Tokens, queries: Tokens, k: int, workdir: Path) -> tuple[dict, tuple[Search, Search]]:
    """Build, save and memory-map our index; its row and its (one-by-one, batch) searches."""
    t0 = time.perf_counter()
    index = InvertedIndex.build(docs, engine="numpy")  # the build alone; kernels compile at load
    build_s = time.perf_counter() - t0
    index.save(workdir / "ours")
    del index
    gc.collect()
    index = InvertedIndex.load(workdir / "ours", mmap=True)
    index.search_batch(queries[:20], k)  # warm up
    row = {"build_s": build_s, "size": dir_size(workdir / "ours")}
    return row, (lambda: [index.search(q, k) for q in queries], lambda: index.search_batch(queries, k))


def prepare_bm25s(docs: Tokens, queries: Tokens, k: int, workdir: Path) -> dict[str, tuple[dict, tuple]]:
    """bm25s built once, then loaded on its numpy backend and (when installed) its numba backend."""
    t0 = time.perf_counter()
    retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    retriever.index(docs, show_progress=False)
    build_s = time.perf_counter() - t0
    retriever.save(str(workdir / "bm25s"))
    size = dir_size(workdir / "bm25s")
    del retriever
    gc.collect()
    backends = {"bm25s numpy": ("numpy", build_s)}
    if _has_numba():
        backends["bm25s numba"] = ("numba", None)
    out = {}
    for name, (backend, built) in backends.items():
        ret = bm25s.BM25.load(str(workdir / "bm25s"), backend=backend)
        ret.retrieve(queries[:20], k=k, show_progress=False)  # warm up (compiles the numba backend)
        out[name] = (
            {"build_s": built, "size": size},
            (
                lambda ret=ret: [ret.retrieve([q], k=k, show_progress=False) for q in queries],
                lambda ret=ret: ret.retrieve(queries, k=k, show_progress=False),
            ),
        )
    return out


def bm25s_results(res: Any) -> Results:
    out = []
    for rows, scores in zip(res.documents, res.scores, strict=True):
        positive = scores > 0
        out.append((rows[positive], scores[positive]))
    return out


def qps(n: int, timed: dict) -> dict[str, float]:
    return {
        "qps_single": n / timed["single_wall"],
        "qps_batch": n / timed["batch_wall"],
        "cpu_qps_single": n / timed["single_cpu"],
        "cpu_qps_batch": n / timed["batch_cpu"],
    }


def agreement(ours: Results, ref: Results) -> tuple[float, float]:
    """Mean top-k overlap with the reference, and share of queries whose score lists are bit-identical."""
    overlaps, equal = [], 0
    for (rows, scores), (ref_rows, ref_scores) in zip(ours, ref, strict=True):
        overlaps.append(
            len(set(rows.tolist()) & set(ref_rows.tolist())) / len(ref_rows) if len(ref_rows) else 1.0
        )
        equal += int(np.array_equal(scores.astype(np.float32), ref_scores.astype(np.float32)))
    return float(np.mean(overlaps)), equal / len(ours)


def bench_corpus(name: str, docs: Tokens, queries: Tokens, args: argparse.Namespace) -> list[dict]:
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        ours_row, ours_searches = prepare_ours(docs, queries, args.k, Path(tmp))
        gc.collect()
        refs = prepare_bm25s(docs, queries, args.k, Path(tmp))
        engines = {"ours": (ours_row, ours_searches), **refs}
        timed = interleaved_medians({name: e[1] for name, e in engines.items()}, args.repeats)
    results = {name: t["batch"] if name == "ours" else bm25s_results(t["batch"]) for name, t in timed.items()}
    meta = {"corpus": name, "docs": len(docs), "queries": len(queries)}
    out = []
    for engine, (row, _) in engines.items():
        overlap, equal = agreement(results[engine], results["bm25s numpy"])
        out.append({**meta, "engine": engine, **row, **qps(len(queries), timed[engine])})
        out[-1].update(overlap=overlap, equal=equal)
    return out


def print_table(rows: list[dict]) -> None:
    head = (
        "| corpus | docs | queries | engine | build s | index MiB | QPS single | QPS batch "
        "| CPU-QPS single | CPU-QPS batch | top-10 overlap | equal scores |"
    )
    print(head)
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        build = "same index" if r["build_s"] is None else f"{r['build_s']:.1f}"
        print(
            f"| {r['corpus']} | {r['docs']:,} | {r['queries']:,} | {r['engine']} | {build} "
            f"| {r['size'] / 2**20:.1f} | {r['qps_single']:,.0f} | {r['qps_batch']:,.0f} "
            f"| {r['cpu_qps_single']:,.0f} | {r['cpu_qps_batch']:,.0f} "
            f"| {r['overlap']:.4f} | {r['equal']:.4f} |"
        )


def print_ratios(rows: list[dict]) -> None:
    """Our QPS divided by each bm25s backend's, per corpus: wall clock and CPU time, same run."""
    print("\n| corpus | ours / | single (wall) | batch (wall) | single (CPU) | batch (CPU) |")
    print("|---|---|---:|---:|---:|---:|")
    keys = ["qps_single", "qps_batch", "cpu_qps_single", "cpu_qps_batch"]
    for r in rows:
        if r["engine"] == "ours":
            continue
        ours = next(o for o in rows if o["corpus"] == r["corpus"] and o["engine"] == "ours")
        ratios = " | ".join(f"{ours[key] / r[key]:.2f}x" for key in keys)
        print(f"| {r['corpus']} | {r['engine']} | {ratios} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000, help="Zipf corpus size")
    parser.add_argument("--vocab", type=int, default=200_000)
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent")
    parser.add_argument("--queries", type=int, default=1000, help="number of Zipf queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--workdir", type=Path, default=None, help="where temporary indices are written")
    parser.add_argument("--skip-scifact", action="store_true")
    parser.add_argument("--skip-zipf", action="store_true")
    args = parser.parse_args()

    load = load_average()
    rows: list[dict] = []
    if not args.skip_scifact:
        rows += bench_corpus("SciFact", *scifact(), args)
    if not args.skip_zipf:
        docs, queries = zipf(args.docs, args.vocab, args.zipf, args.queries, args.seed)
        rows += bench_corpus(f"Zipf s={args.zipf} V={args.vocab:,}", docs, queries, args)
        del docs
    numba = versions("numba") or "numba not installed: no bm25s numba row"
    print(
        f"machine: {cpu_model()}, {usable_cores()} usable cores; numpy {np.__version__}; {numba}; "
        f"bm25s {bm25s.__version__}; single-threaded; k={args.k}; load average at start {load}"
    )
    print(f"peak RSS {peak_rss_gib():.2f} GiB; load average at end {load_average()}")
    print(
        f"QPS = queries / median wall-clock time of {args.repeats} runs; "
        "CPU-QPS = queries / median process CPU time; engines timed round-robin.\n"
    )
    print_table(rows)
    print_ratios(rows)


def _has_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
