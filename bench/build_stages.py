"""Benchmark the build with the embedding cache, and the torch encoder against the int8 ONNX one.

1. Builds the corpus (default: all of data/scifact) twice into a temporary index root with the embedding
   cache on (``ROOT/cache``), prints the seconds of every build stage for both builds, and checks that the
   second build (same items: every embedding comes from the cache) takes at most ``--max-ratio`` (10%) of
   the first.
2. Embeds the first ``--texts`` documents (default 1,000) with the ``torch`` and the ``onnx-int8`` encoder
   (no cache), prints texts/second of each (after a warm-up batch; the ONNX export is timed apart), and the
   cosine between their vectors (min, mean, 1st percentile).

Prints markdown tables and the machine (CPU model, usable cores, load average: other processes sharing the
CPU slow every number down). Exit status 1 when the rebuild check fails.

Usage: .venv/bin/python bench/build_stages.py [--corpus data/scifact] [--texts 1000] [--batch-size 64]
       [--limit N] [--skip-build] [--skip-encoders]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import cpu_model, load_average, usable_cores

from indexer.build import build_collection
from indexer.config import BuildConfig
from indexer.encoders import index_cache_dir, make_encoder
from indexer.encoders.embedding_cache import CachedEncoder
from indexer.encoders.onnx_int8 import OnnxEncoder, export_int8

SCIFACT = Path(__file__).resolve().parents[1] / "data" / "scifact"


def machine_info() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    flags = next((ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines() if ln.startswith("flags")), [])
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    import onnxruntime
    import torch

    return (
        f"- machine: {platform.platform()}, {cpu_model()} ({', '.join(simd) or 'no AVX2'}), "
        f"{usable_cores()} usable cores, load average {load_average()} now "
        "(other processes on the same cores slow every number down)\n"
        f"- python {platform.python_version()}; "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"onnxruntime {onnxruntime.__version__}"
    )


def bench_builds(corpus: Path, batch_size: int, limit: int | None, max_ratio: float) -> bool:
    """Two builds into one temporary root; print stage timings; True when the rebuild is cheap enough."""
    config = BuildConfig(limit=limit, encoder_batch_size=batch_size)
    with tempfile.TemporaryDirectory(prefix="searchrec-bench-") as tmp:
        root = Path(tmp) / "root"
        reports, encoded = [], []
        for attempt in (1, 2):
            encoder = make_encoder("torch", cache_dir=index_cache_dir(root), batch_size=batch_size)
            start = time.perf_counter()
            report = build_collection(corpus, root, config, encoder=encoder, progress=False)
            total = time.perf_counter() - start
            assert isinstance(encoder, CachedEncoder)
            encoded.append(encoder.last.encoded)
            reports.append({**report.seconds, "total": total})
            print(f"build {attempt}: {total:.1f}s, {encoder.last.encoded} texts encoded", flush=True)
    stages = list(dict.fromkeys([*reports[0], *reports[1]]))
    stages.remove("total")
    print(f"\n### Build stages, {report.n_docs} documents of {corpus} (torch encoder, embedding cache on)\n")
    print("| stage | build 1 (empty cache) s | build 2 (no change) s |")
    print("|---|---:|---:|")
    for stage in [*stages, "total"]:
        first, second = reports[0].get(stage, 0.0), reports[1].get(stage, 0.0)
        name = f"**{stage}**" if stage == "total" else stage
        print(f"| {name} | {first:.1f} | {second:.1f} |")
    print(f"| texts encoded | {encoded[0]} | {encoded[1]} |")
    ratio = reports[1]["total"] / reports[0]["total"]
    ok = ratio <= max_ratio and encoded[1] == 0
    print(f"\nsecond build / first build = {ratio:.1%} (limit {max_ratio:.0%}): {'ok' if ok else 'FAILED'}")
    encode_ratio = reports[1].get("encode", 0.0) / max(reports[0].get("encode", 0.0), 1e-9)
    slowest = max(stages, key=lambda stage: reports[1].get(stage, 0.0))
    print(
        f"encode stage: second / first = {encode_ratio:.2%}; slowest stage of the second build: {slowest} "
        f"({reports[1][slowest]:.1f}s, {reports[1][slowest] / reports[1]['total']:.0%} of it)"
    )
    return ok


def read_texts(corpus: Path, n: int) -> list[str]:
    with (corpus / "corpus.jsonl").open(encoding="utf-8") as lines:
        docs = [json.loads(line) for line in islice(lines, n)]
    return [f"{d.get('title', '')}\n{d.get('text', '')}".strip() for d in docs]


def bench_encoders(corpus: Path, n: int, batch_size: int) -> None:
    texts = read_texts(corpus, n)
    with tempfile.TemporaryDirectory(prefix="searchrec-onnx-") as tmp:
        start = time.perf_counter()
        path = export_int8(Path(tmp))
        export_s = time.perf_counter() - start
        size_mib = path.stat().st_size / 2**20
        encoders = {
            "torch": make_encoder("torch", batch_size=batch_size),
            "onnx-int8": OnnxEncoder(batch_size=batch_size, onnx_dir=Path(tmp)),
        }
        vectors, rates = {}, {}
        for kind, encoder in encoders.items():
            encoder.encode(texts[:batch_size])  # load the model and warm up
            start = time.perf_counter()
            vectors[kind] = encoder.encode(texts)
            rates[kind] = len(texts) / (time.perf_counter() - start)
            print(f"{kind}: {rates[kind]:.1f} texts/s", flush=True)
    cosine = (vectors["torch"] * vectors["onnx-int8"]).sum(axis=1)
    print(f"\n### Encoders on the first {len(texts)} documents of {corpus} (batch size {batch_size})\n")
    print("| encoder | texts/s | speed-up | cosine to torch: min | mean | 1st percentile |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| torch (fp32) | {rates['torch']:.1f} | 1.00x | 1 | 1 | 1 |")
    print(
        f"| onnx-int8 | {rates['onnx-int8']:.1f} | {rates['onnx-int8'] / rates['torch']:.2f}x "
        f"| {cosine.min():.4f} | {cosine.mean():.4f} | {np.percentile(cosine, 1):.4f} |"
    )
    print(f"\nONNX export + int8 quantisation: {export_s:.1f}s once, model file {size_mib:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=SCIFACT, help="BEIR folder (default: data/scifact)")
    parser.add_argument("--texts", type=int, default=1000, help="documents for the encoder comparison")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="build only the first N documents")
    parser.add_argument("--max-ratio", type=float, default=0.10, help="rebuild/first build time limit")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--skip-encoders", action="store_true")
    args = parser.parse_args()
    print(machine_info(), flush=True)
    ok = True
    if not args.skip_build:
        ok = bench_builds(args.corpus, args.batch_size, args.limit, args.max_ratio)
    if not args.skip_encoders:
        bench_encoders(args.corpus, args.texts, args.batch_size)
    print("\n" + machine_info())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
