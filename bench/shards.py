"""SciFact sharded against unsharded (issue #14): the BM25 branch's top 100 for every test query (ids and
scores), exact dense search over the shards (ids), the ANN dense branch's overlap, and nDCG@10 through the
REST API of real `searchrec serve` processes with the same ranker: the unsharded version, the sharded one
served in one process, and the sharded one with its shards on Ray Serve (`serve --ray`, a local Ray).
Then the throughput of 8 closed-loop clients on the sharded version served both ways (same run, same
queries), and 8 clients searching the Ray-served version while one shard's replica is killed: failed
requests (must be 0), answers that name the shard, and how long until answers are whole again.

    searchrec build --corpus data/scifact --out SHARDED --shards 4 --ray   # (copy indexes/scifact/cache in
                                                                           #  first to skip the encoder)
    python bench/shards.py --whole indexes/scifact --sharded SHARDED --ranker rankers/scifact
"""

from __future__ import annotations

import argparse
import sys
from itertools import pairwise
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadgen import closed_loop, cpu_seconds, free_port, process_tree, serving
from machine import cpu_model, load_average, usable_cores

from jobs.evaluation.datasets import read_qrels, read_queries
from ranker.metrics import ndcg_at_k
from retrieval.collection import Collection
from retrieval.segments import ExactVectors, SegmentedVectors


def _exact(collection: Collection, per_shard: bool) -> SegmentedVectors:
    """`collection`'s stored vectors searched exhaustively: one segment, or one per shard."""
    sizes = [len(collection)]
    if per_shard:
        sizes = [stop - start for start, stop in collection.manifest["params"]["shards"]["rows"]]
    starts = np.cumsum([0, *sizes])
    params = {"metric": collection.vectors.params.get("metric", "cosine")}
    return SegmentedVectors(
        [
            ExactVectors(collection.vectors.reconstruct(np.arange(a, b)), collection.vectors.dim, params)
            for a, b in pairwise(starts)
        ]
    )


def branch_equality(whole_root: Path, sharded_root: Path, queries: dict[str, str]) -> str:
    whole, sharded = Collection.load(whole_root), Collection.load(sharded_root)
    exact_whole, exact_shards = _exact(whole, per_shard=False), _exact(sharded, per_shard=True)
    try:
        same_ids, worst, overlap, same_exact = 0, 0.0, [], 0
        for text in queries.values():
            rows, scores = whole.inverted.search(whole.query_terms(text), 100)
            shard_rows, shard_scores = sharded.inverted.search(sharded.query_terms(text), 100)
            same_ids += int(np.array_equal(rows, shard_rows))
            if np.array_equal(rows, shard_rows) and len(rows):
                worst = max(worst, float(np.abs(scores - shard_scores).max()))
            vector = whole.encoder.encode_queries([text])
            exact_ids = exact_whole.search(vector, 100)[0][0]
            same_exact += int(np.array_equal(exact_ids, exact_shards.search(vector, 100)[0][0]))
            dense = set(whole.vectors.search(vector, 100)[0][0].tolist())
            shard_dense = set(sharded.vectors.search(vector, 100)[0][0].tolist())
            overlap.append(len(dense & shard_dense) / max(1, len(dense)))
        shards = sharded.manifest["params"]["shards"]["count"]
        backend = sharded.manifest["params"]["ann"]["backend"]
        return (
            f"BM25 top 100: identical ids for {same_ids} of {len(queries)} test queries, largest score "
            f"difference {worst:.1e}; exact dense top 100 (each shard's stored vectors searched "
            f"exhaustively, merged): identical ids for {same_exact} of {len(queries)}; dense top 100 "
            f"({backend} per shard, {shards} shards): mean overlap with the unsharded index "
            f"{np.mean(overlap):.4f}"
        )
    finally:
        whole.close()
        sharded.close()


def _server(root: Path, ranker: Path, ray: bool) -> tuple[str, list[str], dict[str, str]]:
    """A `searchrec serve` of `root` with `ranker` on a free port, one process (shards on Ray with
    `ray`): its URL, command line and environment."""
    port = free_port()
    argv = [sys.executable, "-m", "api.cli", "serve", "--index", f"scifact={root}", "--port", str(port)]
    argv += ["--ranker", f"scifact={ranker}", "--workers", "1", *(["--ray"] if ray else [])]
    return f"http://127.0.0.1:{port}", argv, {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}


def rest_ndcg(root: Path, ranker: Path, queries: dict[str, str], qrels: dict, ray: bool, log: Path) -> tuple:
    url, argv, env = _server(root, ranker, ray)
    scores, degraded = [], 0
    with serving(argv, f"{url}/readyz", lambda body: True, log, env), httpx.Client(timeout=60) as client:
        for qid, text in queries.items():
            body = client.post(f"{url}/search", json={"query": text, "k": 10}).json()
            degraded += bool(body["degraded"])
            scores.append(ndcg_at_k([hit["id"] for hit in body["results"]], qrels[qid], 10))
    return float(np.mean(scores)), degraded


def throughput(root: Path, ranker: Path, queries: dict[str, str], ray: bool, log: Path) -> str:
    """8 closed-loop clients, every query once after a warm-up of 16: a table row."""
    url, argv, env = _server(root, ranker, ray)
    asked = list(queries.items())
    with serving(argv, f"{url}/readyz", lambda body: True, log, env) as server:
        measured = closed_loop(
            f"{url}/search", asked, asked[:16], 8, 10, lambda: cpu_seconds(process_tree(server.pid))
        )
    seconds = np.array([a.seconds for a in measured.answers]) * 1000
    failed = sum(a.status != 200 for a in measured.answers)
    return (
        f"{len(measured.answers) / measured.wall_s:.1f} | {np.percentile(seconds, 50):.0f} | "
        f"{np.percentile(seconds, 99):.0f} | {measured.cpu_s / len(measured.answers) * 1000:.1f} | {failed}"
    )


def kill_under_load(root: Path, ranker: Path, queries: list[str], log: Path, clients: int = 8) -> str:
    """8 closed-loop clients for `seconds`; shard 1's replica killed after a quarter of it."""
    import threading
    import time

    import ray

    url, argv, env = _server(root, ranker, ray=True)
    outcomes: list[tuple[float, int, bool]] = []  # (time, status, degraded)
    stop = threading.Event()

    def client(offset: int) -> None:
        with httpx.Client(timeout=60) as session:
            i = offset
            while not stop.is_set():
                response = session.post(f"{url}/search", json={"query": queries[i % len(queries)], "k": 10})
                degraded = response.status_code == 200 and bool(response.json()["degraded"])
                outcomes.append((time.monotonic(), response.status_code, degraded))
                i += clients

    with serving(argv, f"{url}/readyz", lambda body: True, log, env):
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(10)
        ray.init(address="auto", log_to_driver=False)
        replicas = [
            a
            for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == "serve" and "shard-1#" in a["name"]
        ]
        killed_at = time.monotonic()
        for replica in replicas:
            ray.kill(ray.get_actor(replica["name"], namespace="serve"), no_restart=True)
        ray.shutdown()
        time.sleep(50)
        stop.set()
        for thread in threads:
            thread.join()
    failed = sum(status != 200 for _, status, _ in outcomes)
    hit = [t for t, status, degraded in outcomes if degraded]
    whole_again = max(hit) - killed_at if hit else 0.0
    return (
        f"{len(outcomes)} requests from {clients} clients over {time.monotonic() - start:.0f} s; shard 1's "
        f"{len(replicas)} replica(s) killed at {killed_at - start:.0f} s: {failed} failed, {len(hit)} "
        f"answered without shard 1 (named in degraded), whole again {whole_again:.1f} s after the kill"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--whole", type=Path, default=Path("indexes/scifact"))
    parser.add_argument("--sharded", type=Path, required=True)
    parser.add_argument("--ranker", type=Path, default=Path("rankers/scifact"))
    parser.add_argument("--data", type=Path, default=Path("data/scifact"))
    parser.add_argument("--logs", type=Path, default=Path("bench/out/shards"))
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    qrels = read_qrels(args.data / "qrels/test.tsv")
    queries = {qid: text for qid, text in read_queries(args.data / "queries.jsonl").items() if qid in qrels}
    print(f"Machine: {cpu_model()}, {usable_cores()} usable cores; load average {load_average()}")
    print(branch_equality(args.whole, args.sharded, queries), flush=True)
    print("| served | nDCG@10 through REST | answers degraded |")
    print("| --- | ---: | ---: |")
    for label, root, ray in (
        ("unsharded, one process", args.whole, False),
        ("sharded, one process", args.sharded, False),
        ("sharded, shards on Ray Serve", args.sharded, True),
    ):
        ndcg, degraded = rest_ndcg(
            root, args.ranker, queries, qrels, ray, args.logs / f"{label[:8]}-{ray}.log"
        )
        print(f"| {label} | {ndcg:.4f} | {degraded} of {len(queries)} |", flush=True)
    print("\n| sharded version served | req/s, 8 clients | p50 ms | p99 ms | server CPU ms/req | failed |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, ray in (("in one process", False), ("shards on Ray Serve", True)):
        row = throughput(args.sharded, args.ranker, queries, ray, args.logs / f"load-{ray}.log")
        print(f"| {label} | {row} |", flush=True)
    print(
        kill_under_load(args.sharded, args.ranker, list(queries.values()), args.logs / "kill.log"), flush=True
    )
    print(f"Load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
