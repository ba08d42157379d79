"""HTTP load, side by side: `searchrec serve` with 1, 2 and 4 workers against txtai behind FastAPI.

Each server runs alone on the machine, on 127.0.0.1 and a free port, started as a subprocess and stopped
after its passes. The peer is a txtai hybrid index (BM25 + MiniLM, fused) of the same SciFact corpus with
the same packaged all-MiniLM-L6-v2 (`bench/txtai_peer.py`; built once under `--txtai-root`, then reused).
searchrec serves its SciFact index with its learned ranker. For 1 and 8 clients, a closed loop asks every
SciFact test query once (after a short warm-up of train queries through the same connections) and records
QPS, client-side latency, the servers' CPU time, nDCG@10 of the answers (pytrec_eval against
qrels/test.tsv, in the order served), and each server process's RSS and PSS after the pass. Ratios are
against txtai in the same run. The client runs on the same machine as the server and takes CPU from it.

Usage: .venv/bin/python bench/http_load.py [--queries 300] [--clients 1,8] [--workers 1,2,4] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import numpy as np
import pytrec_eval

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadgen import Pass, closed_loop, cpu_seconds, free_port, memory_kib, process_tree, serving, workers_seen
from machine import cpu_model, load_average, usable_cores, versions

from api.workers import THREAD_ENV
from jobs.evaluation import read_qrels, read_queries

ROOT = Path(__file__).resolve().parents[1]
K = 10
COLLECTION = "scifact"
# The peer as installed, and with one library thread: with torch's and faiss' two OpenMP pools spinning
# on a shared 2-core machine, txtai's defaults can cost it several times its CPU per query at 1 client.
PEER_SETTINGS = {
    "txtai, defaults": {},
    "txtai, 1 library thread": dict.fromkeys(THREAD_ENV, "1"),
}


@dataclass
class Server:
    name: str  # "txtai" or "searchrec"
    label: str  # the configuration, as the table names it
    workers: int
    argv: list[str]
    search_url: str
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Memory:
    """(RSS, PSS) KiB of each process of a server after a pass: the workers that answer, a supervisor
    (uvicorn's, with several workers) and any other process in its tree (multiprocessing's tracker)."""

    workers: list[tuple[int, int]]
    supervisor: tuple[int, int] | None
    other: list[tuple[int, int]]

    def total(self) -> tuple[int, int]:
        every = [*self.workers, *([self.supervisor] if self.supervisor else []), *self.other]
        return sum(m[0] for m in every), sum(m[1] for m in every)

    def per_worker(self) -> tuple[float, float]:
        n = len(self.workers)
        return sum(m[0] for m in self.workers) / n, sum(m[1] for m in self.workers) / n


def read_memory(root: int, workers: list[int]) -> Memory:
    """`workers` are the answering processes (the root itself when it serves alone)."""
    tree = process_tree(root)
    return Memory(
        workers=[memory_kib(pid) for pid in workers],
        supervisor=memory_kib(root) if root not in workers else None,
        other=[memory_kib(pid) for pid in tree if pid != root and pid not in workers],
    )


def worker_pids(server: Server, root: int) -> list[int]:
    """The processes that answer: those /readyz lists for searchrec with workers, else the server itself."""
    if server.name != "searchrec" or server.workers == 1:
        return [root]
    return [int(w["pid"]) for w in httpx.get(server.ready_url, timeout=10.0).json()["workers"]]


@dataclass
class Row:
    server: Server
    clients: int
    run: Pass
    ndcg: float
    memory: Memory
    load: str


def ndcg_at_10(run: Pass, qrels: dict[str, dict[str, int]], asked: list[str]) -> float:
    """Mean nDCG@10 over the asked queries; the served order is kept (score = k - rank), a query that got
    no answer counts 0."""
    served = {
        a.qid: {doc: float(K - rank) for rank, doc in enumerate(a.ids[:K])} for a in run.answers if a.ids
    }
    evaluator = pytrec_eval.RelevanceEvaluator({q: qrels[q] for q in asked}, {"ndcg_cut.10"})
    per_query = evaluator.evaluate(served)
    return sum(per_query.get(q, {}).get("ndcg_cut_10", 0.0) for q in asked) / len(asked)


def servers(args: argparse.Namespace) -> list[Server]:
    def urls(port: int, search: str) -> tuple[str, str]:
        return f"http://127.0.0.1:{port}{search}", f"http://127.0.0.1:{port}/readyz"

    out = []
    peer = [sys.executable, str(ROOT / "bench" / "txtai_peer.py"), "--index", str(args.txtai_root)]
    for label, env in PEER_SETTINGS.items():
        port = free_port()
        out.append(Server("txtai", label, 1, [*peer, "--port", str(port)], *urls(port, "/search"), env))
    for workers in args.workers:
        port = free_port()
        argv = [
            str(Path(sys.executable).with_name("searchrec")), "serve",
            "--index", f"{COLLECTION}={args.index}", "--ranker", f"{COLLECTION}={args.ranker}",
            "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        search = f"/collections/{COLLECTION}/search"
        out.append(Server("searchrec", "searchrec", workers, argv, *urls(port, search)))
    return out


def all_workers_loaded(server: Server):
    """searchrec with N workers is ready when /readyz lists N loaded workers (one answers it)."""
    if server.name != "searchrec" or server.workers == 1:
        return lambda body: True
    return lambda body: len(body.get("workers", [])) >= server.workers


def measure(server: Server, args: argparse.Namespace, queries, warmup, qrels, asked) -> list[Row]:
    rows = []
    log = args.logs / f"{server.label.replace(',', '').replace(' ', '-')}-{server.workers}.log"
    with serving(server.argv, server.ready_url, all_workers_loaded(server), log, server.env) as process:
        for clients in args.clients:
            cpu = partial(cpu_seconds, process_tree(process.pid))
            run = closed_loop(server.search_url, queries, warmup, clients, K, cpu)
            if process.poll() is not None:
                raise RuntimeError(
                    f"{server.label} exited with {process.returncode} in the {clients}-client pass"
                )
            memory = read_memory(process.pid, worker_pids(server, process.pid))
            rows.append(Row(server, clients, run, ndcg_at_10(run, qrels, asked), memory, load_average()))
            print(f"  {server.label} x{server.workers}, {clients} clients: {len(run.answers)} answers in "
                  f"{run.wall_s:.1f} s; load {load_average()}", flush=True)  # fmt: skip
    return rows


def mib(kib: float) -> str:
    return f"{kib / 1024:,.0f}"


def latency(run: Pass) -> tuple[float, float, float, float]:
    """QPS and p50 / p90 / p99 milliseconds of the answered (200) requests; NaN where none was."""
    ok = [a.seconds * 1000 for a in run.answers if a.status == 200]
    if not ok:
        return (0.0, *(float("nan"),) * 3)
    p50, p90, p99 = np.percentile(ok, [50, 90, 99])
    return len(ok) / run.wall_s, float(p50), float(p90), float(p99)


def best_peer(rows: list[Row]) -> dict[int, tuple[float, float]]:
    """Per client count, the best QPS and the best p50 any txtai configuration reached."""
    best: dict[int, tuple[float, float]] = {}
    for row in rows:
        if row.server.name == "txtai":
            qps, p50, _, _ = latency(row.run)
            old_qps, old_p50 = best.get(row.clients, (0.0, float("inf")))
            best[row.clients] = (max(qps, old_qps), min(p50, old_p50))
    return best


def table(rows: list[Row]) -> str:
    peer = best_peer(rows)
    lines = [
        "| server | workers | clients | QPS | QPS ×txtai | p50 ms | p50 ×txtai | p90 ms | p99 ms | "
        "server CPU ms/query | nDCG@10 | errors | RSS / PSS per worker MiB | RSS / PSS total MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        qps, p50, p90, p99 = latency(row.run)
        base_qps, base_p50 = peer.get(row.clients, (float("nan"), float("nan")))
        answered = sum(a.status == 200 for a in row.run.answers)
        per_rss, per_pss = row.memory.per_worker()
        total_rss, total_pss = row.memory.total()
        lines.append(
            f"| {row.server.label} | {row.server.workers} | {row.clients} | "
            f"{qps:.1f} | {qps / base_qps:.2f} | {p50:.1f} | {p50 / base_p50:.2f} | {p90:.1f} | {p99:.1f} | "
            f"{row.run.cpu_s * 1000 / max(answered, 1):.1f} | {row.ndcg:.4f} | "
            f"{len(row.run.answers) - answered} | "
            f"{mib(per_rss)} / {mib(per_pss)} | {mib(total_rss)} / {mib(total_pss)} |"
        )
    return "\n".join(lines)


def processes(memory: Memory) -> str:
    parts = [("supervisor", [memory.supervisor] if memory.supervisor else []), ("other", memory.other)]
    return "".join(
        f"{name} RSS / PSS {mib(sum(m[0] for m in procs))} / {mib(sum(m[1] for m in procs))} MiB "
        f"({len(procs)} process{'es' if len(procs) > 1 else ''}); "
        for name, procs in parts
        if procs
    )


def changed(row: Row, first: Row) -> str:
    """Answers (ids in order) that differ from the same server's first pass, where both were answered."""
    before = {a.qid: a.ids for a in first.run.answers if a.status == 200}
    both = [a for a in row.run.answers if a.status == 200 and a.qid in before]
    return f"{sum(a.ids != before[a.qid] for a in both)} of {len(both)} answers differ from its first pass; "


def notes(rows: list[Row]) -> str:
    lines, first = [], {}
    for row in rows:
        first.setdefault(id(row.server), row)
        statuses = Counter(a.status for a in row.run.answers if a.status != 200)
        scorers = Counter(a.scorer for a in row.run.answers if a.scorer).most_common()
        spread = workers_seen(row.run.answers)
        lines.append(
            f"- {row.server.label} x{row.server.workers}, {row.clients} clients: "
            + processes(row.memory)
            + (f"answers per worker {spread}; " if spread else "")
            + ("ordered by " + ", ".join(f"{name} {n}" for name, n in scorers) + "; " if scorers else "")
            + (
                "failed: " + ", ".join(f"{n} × status {s}" for s, n in statuses.items()) + "; "
                if statuses
                else ""
            )
            + (changed(row, first[id(row.server)]) if first[id(row.server)] is not row else "")
            + f"load average after the pass {row.load}"
        )
    return "\n".join(lines)


def machine() -> str:
    return (
        f"{cpu_model()}; {usable_cores()} usable cores; Python {platform.python_version()}; "
        f"{versions('searchrec', 'txtai', 'torch', 'transformers', 'fastapi', 'uvicorn', 'httpx')}"
    )


def arguments() -> argparse.Namespace:
    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x]

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "scifact")
    parser.add_argument("--ranker", type=Path, default=ROOT / "rankers" / "scifact")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "scifact")
    parser.add_argument("--txtai-root", type=Path, default=ROOT / "indexes" / "bench-txtai")
    parser.add_argument("--queries", type=int, default=None, help="first N test queries [all]")
    parser.add_argument("--warmup", type=int, default=20, help="train queries asked before each pass")
    parser.add_argument("--clients", type=ints, default=[1, 8])
    parser.add_argument("--workers", type=ints, default=[1, 2, 4], help="searchrec worker counts")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    parser.add_argument("--logs", type=Path, default=ROOT / "bench" / "out" / "http_load")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from txtai_peer import build
    except ImportError as error:
        raise SystemExit(f"{error}: install the bench extra: pip install -e '.[bench]'") from None
    args.logs.mkdir(parents=True, exist_ok=True)
    load_at_start = load_average()
    print(f"Machine: {machine()}\nLoad average at start: {load_at_start}", flush=True)
    started = time.perf_counter()
    built = build(args.data / "corpus.jsonl", args.txtai_root)
    print(
        f"txtai index {'built' if built else 'reused'} in {time.perf_counter() - started:.0f} s", flush=True
    )

    texts = read_queries(args.data / "queries.jsonl")
    qrels = read_qrels(args.data / "qrels" / "test.tsv")
    asked = sorted(qrels)[: args.queries]
    queries = [(q, texts[q]) for q in asked]
    warmup = [(q, texts[q]) for q in texts if q not in qrels][: args.warmup]
    rows = []
    for server in servers(args):
        rows.extend(measure(server, args, queries, warmup, qrels, asked))
    report = (
        f"{len(asked)} SciFact test queries per pass, k = {K}, after {len(warmup)} warm-up train queries; "
        f"closed loop, one keep-alive connection per client; latency as the client saw it. ×txtai: against "
        f"the better txtai configuration at the same client count (the higher QPS, the lower p50).\n\n"
        f"{table(rows)}\n\n{notes(rows)}\n\n"
        f"Machine: {machine()}; load average {load_at_start} at start, {load_average()} at end\n"
    )
    print(report, flush=True)
    if args.out is not None:
        args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
