"""How the build and the service grow with the catalogue (issue #14): seeded synthetic collections of 10k,
100k and 1M items (Zipf-distributed text, seeded unit vectors of dimension 384 supplied through the vector
column, so no encoder runs), each built with the default configuration except Word2Vec (off, to bound the
run) in one process; then the version's bytes per item, the serving process's memory per item, and query
latency p50/p99 for BM25, dense and the whole pipeline. With `--ray`, each size is built again as a Ray
job on a local Ray of `--ray-workers` CPUs in as many shards (`build --ray --shards`: analysis and the
shards' BM25, HNSW and forward indices in Ray tasks), started once before the first size so its start-up
is not timed.

    python bench/growth.py [--max-docs 100000] [--ray] [--ray-workers 2] [--out FILE]

`--max-docs` leaves out the larger sizes (1M needs about 2 GB of Parquet and long HNSW builds: not for a
two-core machine).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import cpu_model, load_average, rss_mib, usable_cores

from indexer.build import BuildReport, build_collection
from indexer.config import BuildConfig, apply_column_map
from indexer.versions import resolve_artifact
from retrieval.service import CollectionService

SIZES = (10_000, 100_000, 1_000_000)
VOCABULARY = 50_000
DIM = 384
WORDS_PER_ITEM = 60
QUERIES = 300


def synthetic_items(n: int, path: Path, seed: int = 0) -> Path:
    """`n` items as Parquet: ids, Zipf text over a fixed vocabulary, seeded unit vectors of `DIM`."""
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(VOCABULARY)])
    ranks = np.minimum(rng.zipf(1.2, size=n * WORDS_PER_ITEM), VOCABULARY) - 1
    texts = [" ".join(words[ranks[i * WORDS_PER_ITEM : (i + 1) * WORDS_PER_ITEM]]) for i in range(n)]
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    emb = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM)
    table = pa.table({"id": [f"item-{i}" for i in range(n)], "text": texts, "emb": emb})
    pq.write_table(table, path)
    return path


def percentiles(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1000
    return f"{np.percentile(ms, 50):.2f} / {np.percentile(ms, 99):.2f}"


def stages(report: BuildReport) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in report.seconds.items() if v >= 1)


def measure(n: int, work: Path, ray_workers: int) -> str:
    items = synthetic_items(n, work / f"items-{n}.parquet")
    config = apply_column_map(BuildConfig(), ["vector=emb"])
    config = config.model_copy(update={"word2vec": config.word2vec.model_copy(update={"enabled": False})})
    start = time.perf_counter()
    report = build_collection(items, work / f"root-{n}", config, progress=False)
    build_s = time.perf_counter() - start
    on_ray = "not run"
    if ray_workers:
        from indexer.ray_build import RayBuild

        sharded = config.model_copy(update={"shards": ray_workers})
        start = time.perf_counter()
        ray_report = build_collection(items, work / f"ray-{n}", sharded, spread=RayBuild(), progress=False)
        on_ray = f"{time.perf_counter() - start:.0f} ({stages(ray_report)})"
    version = resolve_artifact(work / f"root-{n}")
    size = sum(f.stat().st_size for f in version.rglob("*") if f.is_file())
    gc.collect()
    before = rss_mib()
    service = CollectionService.open(work / f"root-{n}")
    loaded = rss_mib() - before
    rng = np.random.default_rng(1)
    texts = [f"w{a} w{b}" for a, b in rng.integers(0, 2000, size=(QUERIES, 2))]
    queries = rng.standard_normal((QUERIES, DIM)).astype(np.float32)
    collection = service.collection
    timings: dict[str, list[float]] = {"bm25": [], "dense": [], "pipeline": []}
    for text, vector in zip(texts, queries, strict=True):
        t = time.perf_counter()
        collection.inverted.search(collection.query_terms(text), 100)
        timings["bm25"].append(time.perf_counter() - t)
        t = time.perf_counter()
        collection.vectors.search(vector[None, :], 100)
        timings["dense"].append(time.perf_counter() - t)
        t = time.perf_counter()
        service.search(text, 10)
        timings["pipeline"].append(time.perf_counter() - t)
    service.close()
    return (
        f"| {n:,} | {build_s:.0f} ({stages(report)}) | {on_ray} | {size / n:,.0f} | "
        f"{loaded * 2**20 / n:,.0f} | "
        f"{percentiles(timings['bm25'])} | {percentiles(timings['dense'])} | "
        f"{percentiles(timings['pipeline'])} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-docs", type=int, default=100_000)
    parser.add_argument("--ray", action="store_true", help="also build each size as a Ray job")
    parser.add_argument("--ray-workers", type=int, default=2, help="local Ray CPUs, and shards")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.ray:
        import ray

        ray.init(num_cpus=args.ray_workers, include_dashboard=False, log_to_driver=False)
    lines = [
        f"Machine: {cpu_model()}, {usable_cores()} usable cores; load average at the start {load_average()}",
        "",
        "| items | build s, one process (stages >= 1 s) | build s, Ray job "
        f"({args.ray_workers} workers, {args.ray_workers} shards) | version bytes/item | serving RSS "
        "bytes/item | BM25 p50/p99 ms | dense p50/p99 ms | pipeline p50/p99 ms |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory(prefix="searchrec-growth-") as folder:
        for n in [size for size in SIZES if size <= args.max_docs]:
            lines.append(measure(n, Path(folder), args.ray_workers if args.ray else 0))
            print(lines[-1], flush=True)
    lines.append(f"\nLoad average at the end {load_average()}.")
    print(lines[-1])
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
