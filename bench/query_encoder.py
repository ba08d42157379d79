"""Embedding one search query: sentence-transformers fp32 (the ``torch`` encoder) against ONNX Runtime int8.

What the dense branch pays per request: one query text, encoded alone (`encode_queries([text])`), on SciFact
test queries. Each encoder runs in a process of its own (a second model's threads in the same process would
take the cores from the first), and the processes alternate in rounds (A B C, C B A, ...) so that a change
in the machine's load falls on each alike. Encoders:

- ``torch``: all-MiniLM-L6-v2 in fp32 through sentence-transformers (`indexer.encoders.torch.Encoder`);
- ``onnx-int8, default session``: the int8 export with onnxruntime's default session options (what the
  service used before its session was tuned);
- ``onnx-int8``: the same model with `indexer.encoders.onnx_int8.session_options`, as the service runs it.

``--threads N`` sets OMP_NUM_THREADS=N for every process (torch and the ONNX encoder follow it, as in a
``serve --workers`` worker); 0 (the default) leaves the libraries their own defaults, as ``--workers 1``.
Prints p50/p99 milliseconds and CPU milliseconds per query, the speed-up over torch per round and its
median, and the cosine of each encoder's query vectors to torch's. The ONNX model is taken from, or exported
into, the user cache folder (``$SEARCHREC_CACHE_DIR/onnx``).

Usage: .venv/bin/python bench/query_encoder.py [--queries 300] [--rounds 3] [--threads 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_model, load_average, usable_cores, versions

ROOT = Path(__file__).resolve().parents[1]
TORCH, UNTUNED, TUNED = "torch", "onnx-int8, default session", "onnx-int8"
ENCODERS = (TORCH, UNTUNED, TUNED)
WARM_UP = 10


def make(name: str) -> Any:
    sys.path.insert(0, str(ROOT))
    from indexer.encoders.onnx_int8 import OnnxEncoder
    from indexer.encoders.torch import Encoder

    if name == TORCH:
        return Encoder()
    encoder = OnnxEncoder()
    if name == UNTUNED:
        import onnxruntime as ort

        from indexer.encoders.onnx_int8 import session_threads

        options = ort.SessionOptions()
        options.intra_op_num_threads = session_threads(0)
        session = ort.InferenceSession(str(encoder.model_path), options, providers=["CPUExecutionProvider"])
        encoder.__dict__["session"] = session  # in place of the tuned one (a cached_property)
    return encoder


def child(name: str, data: Path, n: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from jobs.evaluation import read_qrels, read_queries

    texts = read_queries(data / "queries.jsonl")
    tests = [texts[q] for q in sorted(read_qrels(data / "qrels" / "test.tsv"))][:n]
    train = [texts[q] for q in sorted(read_qrels(data / "qrels" / "train.tsv"))][:WARM_UP]
    encoder = make(name)
    load_before = load_average()

    def timed(text: str) -> tuple[float, np.ndarray]:
        start = time.perf_counter()
        vector = encoder.encode_queries([text])[0]
        return (time.perf_counter() - start) * 1000, vector

    # On a worker thread, as the service's dense branch runs: on a loaded 2-core machine torch measured
    # several times slower on the main thread than on a worker (see bench/long_query.py).
    with ThreadPoolExecutor(max_workers=1) as worker:
        for text in train:
            worker.submit(timed, text).result()
        cpu_start = time.process_time()
        measured = [worker.submit(timed, text).result() for text in tests]
        cpu_ms = (time.process_time() - cpu_start) * 1000 / len(tests)
    took = [ms for ms, _ in measured]
    vectors = [vector for _, vector in measured]
    return {
        "took": took,
        "cpu_ms": cpu_ms,
        "vectors": np.asarray(vectors).tolist(),
        "load": f"{load_before} / {load_average()}",
    }


def run_child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    env = os.environ.copy()
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    command = [sys.executable, __file__, "--child", name, "--data", str(args.data)]
    command += ["--queries", str(args.queries)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"measuring {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    threads = f"OMP_NUM_THREADS={args.threads}" if args.threads else "library default threads"
    print(f"### One query at a time: {args.queries} SciFact test queries, {threads}\n")
    print(
        "| encoder | p50 ms | p99 ms | CPU ms / query | speed-up (p50) | per round "
        "| cosine to torch: min / mean |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- | --- |")
    base = [np.percentile(r["took"], 50) for r in runs[TORCH]]
    reference = np.asarray(runs[TORCH][0]["vectors"])
    for name in ENCODERS:
        p50 = [np.percentile(r["took"], 50) for r in runs[name]]
        p99 = [np.percentile(r["took"], 99) for r in runs[name]]
        ratio = [b / p for b, p in zip(base, p50, strict=True)]
        cosine = (np.asarray(runs[name][0]["vectors"]) * reference).sum(axis=1)
        print(
            f"| {name} | {np.median(p50):.2f} | {np.median(p99):.2f} "
            f"| {np.median([r['cpu_ms'] for r in runs[name]]):.2f} | **{np.median(ratio):.2f}x** "
            f"| {' / '.join(f'{r:.2f}x' for r in ratio)} | {cosine.min():.4f} / {cosine.mean():.4f} |"
        )
    print("\nLoad average (1/5/15 min) before / after each process:\n")
    for name in ENCODERS:
        print(f"- {name}: " + "; ".join(r["load"] for r in runs[name]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "scifact")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for every encoder (0: unset)")
    parser.add_argument("--child", choices=ENCODERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.data, args.queries)))
        return
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ENCODERS}
    for round_ in range(args.rounds):
        for name in ENCODERS if round_ % 2 == 0 else ENCODERS[::-1]:
            print(f"round {round_ + 1}: {name}", file=sys.stderr, flush=True)
            runs[name].append(run_child(name, args))
    report(runs, args)
    print(
        f"\nMachine: {cpu_model()}; {usable_cores()} usable cores; Python {platform.python_version()}; "
        f"{versions('torch', 'sentence-transformers', 'onnxruntime')}; "
        f"load average {load_average()} at the end"
    )


if __name__ == "__main__":
    main()
