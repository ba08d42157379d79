"""Benchmark every ANN backend: build time, memory, single-query and batched QPS, recall@10.

Datasets:
  (a) embeddings from a file (``--vectors FILE.npy``, e.g. the SciFact corpus embeddings written by the
      index build); queries come from ``--query-vectors FILE.npy`` or, without it, from held-out rows;
  (b) seeded synthetic data (``--n`` vectors of ``--dim`` dims, default 1,000,000 x 384): Gaussian
      clusters whose points spread over a shared 64-dimensional latent subspace plus small isotropic
      noise, and 1,000 queries drawn from the same mixture.
Ground truth is exact cosine search (numpy, in row chunks). Results are printed as markdown tables
with machine information; ``--out FILE.md`` also writes them to a file.

Usage:
  .venv/bin/python bench/ann.py                                   # 1M x 384 synthetic, all backends
  .venv/bin/python bench/ann.py --n 100000 --backends hnsw faiss_ivf_flat
  .venv/bin/python bench/ann.py --vectors indexes/scifact/vectors.npy --skip-synthetic
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import cpu_model, load_average, peak_rss_gib, rss_mib, usable_cores, versions

from indexer.ann import BACKENDS, make_index
from indexer.ann.base import exact_search, normalize_rows
from indexer.ann.faiss_ivf import gpu_available

K = 10
SHOWN_BUILD_PARAMS = ("M", "ef_construction", "nlist", "m", "nbits", "n_trees")


@dataclass
class Row:
    dataset: str
    backend: str
    build: str
    search: str
    build_s: float
    rss_mib: float
    disk_mib: float
    qps_single: float
    qps_batch: float
    recall: float


def plans(args: argparse.Namespace) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Build parameters and the search settings to sweep, per backend."""
    graph = {"M": args.hnsw_m, "ef_construction": args.ef_construction}
    return {
        "exact": ({}, [{}]),
        "hnsw": (graph, [{"ef": 16}, {"ef": 64}, {"ef": 256}]),
        "faiss_hnsw": (graph, [{"ef": 16}, {"ef": 64}, {"ef": 256}]),
        "faiss_ivf_flat": ({}, [{"nprobe": 4}, {"nprobe": 16}, {"nprobe": 64}]),
        "faiss_ivf_pq": ({}, [{"nprobe": 4}, {"nprobe": 16}, {"nprobe": 64}]),
        "annoy": (
            {"n_trees": args.annoy_trees},
            [{"search_k": 5_000}, {"search_k": 20_000}, {"search_k": 80_000}],
        ),
    }


def synthetic(n: int, dim: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit-normalised clustered vectors (generated in chunks to bound temporary memory)."""
    rng = np.random.default_rng(seed)
    n_clusters, latent = max(10, min(1000, n // 100)), 64
    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    basis = (rng.standard_normal((latent, dim)) / np.sqrt(latent)).astype(np.float32)
    spread = rng.uniform(0.5, 1.5, size=n_clusters).astype(np.float32)

    def draw(m: int, r: np.random.Generator) -> np.ndarray:
        out = np.empty((m, dim), dtype=np.float32)
        for s in range(0, m, 100_000):
            e = min(m, s + 100_000)
            c = r.integers(0, n_clusters, e - s)
            z = r.standard_normal((e - s, latent), dtype=np.float32) * spread[c, None]
            chunk = centres[c] + z @ basis + 0.1 * r.standard_normal((e - s, dim), dtype=np.float32)
            out[s:e] = normalize_rows(chunk)
        return out

    return draw(n, np.random.default_rng(seed + 1)), draw(n_queries, np.random.default_rng(seed + 2))


def from_files(vectors: Path, queries: Path | None, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    x = normalize_rows(np.load(vectors, mmap_mode="r"))
    if queries is not None:
        return x, normalize_rows(np.load(queries))
    n_queries = min(n_queries, len(x) // 10)
    held = np.zeros(len(x), dtype=bool)
    held[np.random.default_rng(0).choice(len(x), n_queries, replace=False)] = True
    return x[~held], x[held]


def release_memory() -> None:
    gc.collect()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def single_qps(index: Any, q: np.ndarray, max_queries: int, budget_s: float) -> float:
    done, start = 0, time.perf_counter()
    for i in range(min(len(q), max_queries)):
        index.search(q[i], K)
        done = i + 1
        if done >= 10 and time.perf_counter() - start > budget_s:
            break
    return done / (time.perf_counter() - start)


def fmt_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "-"


def bench_backend(
    name: str, dataset: str, x: np.ndarray, q: np.ndarray, truth: np.ndarray, args
) -> list[Row]:
    build_params, settings = plans(args)[name]
    release_memory()
    rss0, start = rss_mib(), time.perf_counter()
    index = make_index(name, x.shape[1], **build_params)
    index.add(x)
    index.search(q[:1], K)  # annoy builds its forest lazily: count that in the build time
    build_s = time.perf_counter() - start
    rss = rss_mib() - rss0
    tmp = Path(tempfile.mkdtemp(prefix="ann-bench-"))
    try:
        files = index.save(tmp)
        disk = sum((tmp / f).stat().st_size for f in files) / 2**20
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    build_desc = fmt_params({k: v for k, v in index.params.items() if k in SHOWN_BUILD_PARAMS})
    log(f"  {name} {build_desc}: built in {build_s:.1f}s, RSS +{rss:.0f} MiB, {disk:.0f} MiB on disk")
    rows = []
    for setting in settings:
        if setting:
            index.set_search_params(**setting)
        index.search(q[:10], K)  # warm-up
        qps1 = single_qps(index, q, args.max_single, args.single_seconds)
        start = time.perf_counter()
        found, _ = index.search(q, K)
        qps_b = len(q) / (time.perf_counter() - start)
        rows.append(
            Row(
                dataset,
                name,
                build_desc,
                fmt_params(setting),
                build_s,
                rss,
                disk,
                qps1,
                qps_b,
                recall_at_k(found, truth),
            )
        )
        log(f"  {name} {fmt_params(setting)}: recall@10 {rows[-1].recall:.3f}, {qps1:.0f} / {qps_b:.0f} QPS")
    del index
    release_memory()
    return rows


def run_dataset(dataset: str, x: np.ndarray, q: np.ndarray, args: argparse.Namespace) -> list[Row]:
    log(f"{dataset}: {x.shape[0]:,} x {x.shape[1]} vectors, {len(q):,} queries; exact ground truth ...")
    start = time.perf_counter()
    truth, _ = exact_search(q, K, "cosine", np.arange(len(x)), x.__getitem__)
    log(f"  ground truth in {time.perf_counter() - start:.1f}s")
    rows: list[Row] = []
    for name in args.backends:
        log(f"{dataset}: {name} ...")
        rows += bench_backend(name, dataset, x, q, truth, args)
    return rows


def machine_info() -> str:
    meminfo = Path("/proc/meminfo").read_text()
    mem = next((int(ln.split()[1]) / 2**20 for ln in meminfo.splitlines() if ln.startswith("MemTotal")), 0.0)
    libraries = versions("numpy", "faiss-cpu", "faiss-gpu", "hnswlib", "annoy")
    return (
        f"- machine: {platform.platform()}, {cpu_model()}, {usable_cores()} usable cores, "
        f"{mem:.1f} GiB RAM, load average {load_average()} at the end, "
        f"peak RSS of this run {peak_rss_gib():.1f} GiB\n"
        f"- python {platform.python_version()}; {libraries}; faiss GPU: {gpu_available()}"
    )


def table(rows: list[Row]) -> str:
    head = (
        "| dataset | backend | build params | search | build s | RSS Δ MiB | disk MiB | QPS 1-query | "
        "QPS batch | recall@10 |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|"
    )
    body = [
        f"| {r.dataset} | {r.backend} | {r.build} | {r.search} | {r.build_s:.1f} | {r.rss_mib:.0f} | "
        f"{r.disk_mib:.0f} | {r.qps_single:.0f} | {r.qps_batch:.0f} | {r.recall:.3f} |"
        for r in rows
    ]
    return "\n".join([head, *body])


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000, help="synthetic vectors (default 1,000,000)")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--vectors", type=Path, help="embeddings .npy to benchmark (e.g. SciFact corpus)")
    p.add_argument("--query-vectors", type=Path, help="query embeddings .npy (default: held-out rows)")
    p.add_argument("--skip-synthetic", action="store_true")
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    p.add_argument("--hnsw-m", type=int, default=12, help="M for both HNSW backends")
    p.add_argument("--ef-construction", type=int, default=64, help="efConstruction for both HNSW backends")
    p.add_argument("--annoy-trees", type=int, default=32)
    p.add_argument("--max-single", type=int, default=200, help="queries timed one by one at most")
    p.add_argument("--single-seconds", type=float, default=5.0, help="time budget of the one-by-one loop")
    p.add_argument("--out", type=Path, help="also write the markdown report here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.time()
    rows: list[Row] = []
    if args.vectors is None:
        log("no --vectors FILE.npy given: skipping the real-embeddings dataset")
    elif not args.vectors.is_file():
        log(f"{args.vectors} not found: skipping the real-embeddings dataset")
    else:
        x, q = from_files(args.vectors, args.query_vectors, args.queries)
        rows += run_dataset(args.vectors.stem, x, q, args)
        del x, q
    if not args.skip_synthetic:
        log(f"generating {args.n:,} x {args.dim} synthetic vectors ...")
        x, q = synthetic(args.n, args.dim, args.queries)
        rows += run_dataset(f"synthetic-{args.n // 1000}k", x, q, args)
    report = (
        f"## ANN benchmark (k={K}, cosine)\n\n{machine_info()}\n- command: `{' '.join(sys.argv)}`; "
        f"total {time.time() - started:.0f}s\n\n{table(rows)}\n"
    )
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
