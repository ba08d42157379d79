"""SciFact sharded against unsharded (issue #14): the BM25 branch's top 100 for every test query (ids and
scores), the dense branch's overlap, and nDCG@10 through the REST API of real `searchrec serve` processes
with the same ranker: the unsharded version, the sharded one served in one process, and the sharded one
with its shards on Ray Serve (`serve --ray`, a local Ray). Then 8 clients search the Ray-served version
while one shard's replica is killed: failed requests (must be 0), answers that name the shard, and how
long until answers are whole again.

    searchrec build --corpus data/scifact --out SHARDED --shards 4 --ray   # (copy indexes/scifact/cache in
                                                                           #  first to skip the encoder)
    python bench/shards.py --whole indexes/scifact --sharded SHARDED --ranker rankers/scifact
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadgen import free_port, serving
from machine import cpu_model, load_average, usable_cores

from jobs.evaluation.datasets import read_qrels, read_queries
from ranker.metrics import ndcg_at_k
from retrieval.collection import Collection


def branch_equality(whole_root: Path, sharded_root: Path, queries: dict[str, str]) -> str:
    whole, sharded = Collection.load(whole_root), Collection.load(sharded_root)
    try:
        same_ids, worst, overlap = 0, 0.0, []
        for text in queries.values():
            rows, scores = whole.inverted.search(whole.query_terms(text), 100)
            shard_rows, shard_scores = sharded.inverted.search(sharded.query_terms(text), 100)
            same_ids += int(np.array_equal(rows, shard_rows))
            if np.array_equal(rows, shard_rows) and len(rows):
                worst = max(worst, float(np.abs(scores - shard_scores).max()))
            vector = whole.encoder.encode_queries([text])
            dense = set(whole.vectors.search(vector, 100)[0][0].tolist())
            shard_dense = set(sharded.vectors.search(vector, 100)[0][0].tolist())
            overlap.append(len(dense & shard_dense) / max(1, len(dense)))
        shards = sharded.manifest["params"]["shards"]["count"]
        backend = sharded.manifest["params"]["ann"]["backend"]
        return (
            f"BM25 top 100: identical ids for {same_ids} of {len(queries)} test queries, largest score "
            f"difference {worst:.1e}; dense top 100 ({backend} per shard, {shards} shards): mean overlap "
            f"with the unsharded index {np.mean(overlap):.4f}"
        )
    finally:
        whole.close()
        sharded.close()


def rest_ndcg(root: Path, ranker: Path, queries: dict[str, str], qrels: dict, ray: bool, log: Path) -> tuple:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "api.cli", "serve", "--index", f"scifact={root}", "--port", str(port)]
    argv += ["--ranker", f"scifact={ranker}", "--workers", "1", *(["--ray"] if ray else [])]
    env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    scores, degraded = [], 0
    with serving(argv, f"{url}/readyz", lambda body: True, log, env), httpx.Client(timeout=60) as client:
        for qid, text in queries.items():
            body = client.post(f"{url}/search", json={"query": text, "k": 10}).json()
            degraded += bool(body["degraded"])
            scores.append(ndcg_at_k([hit["id"] for hit in body["results"]], qrels[qid], 10))
    return float(np.mean(scores)), degraded


def kill_under_load(root: Path, ranker: Path, queries: list[str], log: Path, clients: int = 8) -> str:
    """8 closed-loop clients for `seconds`; shard 1's replica killed after a quarter of it."""
    import threading
    import time

    import ray

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "api.cli", "serve", "--index", f"scifact={root}", "--port", str(port)]
    argv += ["--ranker", f"scifact={ranker}", "--ray"]
    env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
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
    print(
        kill_under_load(args.sharded, args.ranker, list(queries.values()), args.logs / "kill.log"), flush=True
    )
    print(f"Load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
