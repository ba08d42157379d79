"""Real-time writes (issue #13): how many a `searchrec serve --workers 2` accepts, and how soon the other
worker shows one.

A copy of a MovieLens index root (`--index`, default the demo's `indexes/movies`; its caches left behind) is
served with two workers and an admin token. Each kind of write is a `WriteKind`: how to send its i-th write,
and how to tell from an answer that the i-th write has arrived. Three kinds: behaviour events
(`POST /collections/movies/events`, at `--batches` events per request), item upserts (`PUT
/collections/movies/items/{id}`: a new movie, found by a search for its unique title word) and item deletes
(`DELETE /collections/movies/items/{id}`).

- Throughput: for each kind and each of `--clients` (closed loops, one keep-alive connection each, which the
  kernel hands to either worker), a fixed number of writes after a short warm-up: units accepted per second
  (events or deletes), requests per second, and client-side latency. Every write is appended to the log
  and fsynced before its 200 (no group commit), so this is mostly the disk's fsync rate.
- Visibility: two connections pinned to different workers (told apart by the `X-Worker` header). A write
  goes through one; the other is asked until its answer shows the write: for events, a `/recommend` for the
  event's new user that some behaviour branch (not only `popular`) answered; for a delete, a 404 for the
  item. The time from the write's 200 to that answer, alternating the direction, as p50/p99. It includes
  the other worker's poll of the log (every 50 ms), applying the write, and one asking round trip (its
  median is printed as the resolution).

Usage: .venv/bin/python bench/writes.py [--index indexes/movies] [--clients 1,8] [--batches 1,100]
       [--samples 200] [--out FILE]
"""

from __future__ import annotations

import argparse
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadgen import free_port, serving
from machine import cpu_model, load_average, usable_cores, versions

from indexer.behaviour import Behaviour
from indexer.ids import read_ids
from indexer.versions import resolve_artifact

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 2
VISIBLE_WITHIN_S = 30.0  # a write not shown by then counts as a failure


@dataclass(frozen=True)
class WriteKind:
    """One kind of write. `send(client, i)` makes the i-th write and returns the units it was accepted with
    (events, or 1 per delete), raising on any answer but 200; `seen(client, i)` says whether the answer
    `client` gets shows the i-th write. Indices are never reused within a run."""

    name: str
    unit: str
    batch: int
    send: Callable[[httpx.Client, int], int]
    seen: Callable[[httpx.Client, int], bool]


def _ok(response: httpx.Response) -> dict:
    if response.status_code != 200:
        request = response.request
        raise RuntimeError(
            f"{request.method} {request.url.path}: {response.status_code} {response.text[:300]}"
        )
    return response.json()


def events_kind(collection: str, items: Sequence[str], batch: int, start_time: int) -> WriteKind:
    """The i-th write: `batch` events of a new user ``bench-B-i`` on items taken in turn from `items`."""

    def user(i: int) -> str:
        return f"bench-{batch}-{i}"

    def send(client: httpx.Client, i: int) -> int:
        events = [
            {"user_id": user(i), "item_id": items[(i * batch + j) % len(items)], "timestamp": start_time + j}
            for j in range(batch)
        ]
        return int(_ok(client.post(f"/collections/{collection}/events", json={"events": events}))["accepted"])

    def seen(client: httpx.Client, i: int) -> bool:
        body = _ok(client.post(f"/collections/{collection}/recommend", json={"user_id": user(i), "k": 10}))
        return any(set(hit["branches"]) - {"popular"} for hit in body["results"])

    return WriteKind("events", "events", batch, send, seen)


def upsert_kind(collection: str) -> WriteKind:
    """The i-th write adds a new movie ``bench-new-i`` whose title holds a word no other movie has."""

    def word(i: int) -> str:
        return f"zqbench{i}"

    def send(client: httpx.Client, i: int) -> int:
        movie = {"title": f"The {word(i)} story ({2030 + i % 50})", "genres": "Drama|Comedy", "tags": "new"}
        return int(_ok(client.put(f"/collections/{collection}/items/bench-new-{i}", json=movie))["accepted"])

    def seen(client: httpx.Client, i: int) -> bool:
        query = {"query": word(i), "k": 1, "branches": ["bm25"]}  # fusion could tie it with a dense hit
        body = _ok(client.post(f"/collections/{collection}/search", json=query))
        return [hit["id"] for hit in body["results"]] == [f"bench-new-{i}"]

    return WriteKind("upsert", "upserts", 1, send, seen)


def delete_kind(collection: str, items: Sequence[str]) -> WriteKind:
    """The i-th write deletes `items[i]`."""

    def send(client: httpx.Client, i: int) -> int:
        return int(_ok(client.delete(f"/collections/{collection}/items/{items[i]}"))["accepted"])

    def seen(client: httpx.Client, i: int) -> bool:
        return client.get(f"/collections/{collection}/items/{items[i]}").status_code == 404

    return WriteKind("delete", "deletes", 1, send, seen)


# ---------------------------------------------------------------------------------------------- throughput
@dataclass
class Rate:
    kind: WriteKind
    clients: int
    seconds: list[float]  # per request, client-side
    units: int
    wall_s: float
    workers: Counter


def throughput(url: str, headers: dict, kind: WriteKind, indices: range, clients: int, warmup: int) -> Rate:
    """`clients` closed loops making the writes `indices` (the first `warmup` of them unmeasured)."""
    connections = [httpx.Client(base_url=url, headers=headers, timeout=120.0) for _ in range(clients)]
    lock = threading.Lock()
    seconds: list[float] = []
    units = [0]
    workers: Counter = Counter()

    def drive(pending: range, record: bool) -> None:
        queue = iter(pending)

        def loop(client: httpx.Client) -> None:
            while True:
                with lock:
                    i = next(queue, None)
                if i is None:
                    return
                start = time.perf_counter()
                accepted = kind.send(client, i)
                took = time.perf_counter() - start
                if record:
                    with lock:
                        seconds.append(took)
                        units[0] += accepted

        threads = [threading.Thread(target=loop, args=(c,)) for c in connections]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    try:
        drive(indices[:warmup], record=False)
        for client in connections:  # which worker each connection reached
            workers[client.get("/healthz").headers.get("x-worker", "?")] += 1
        start = time.perf_counter()
        drive(indices[warmup:], record=True)
        wall = time.perf_counter() - start
    finally:
        for client in connections:
            client.close()
    return Rate(kind, clients, seconds, units[0], wall, workers)


# ---------------------------------------------------------------------------------------------- visibility
class Pinned:
    """One keep-alive connection, and the worker (`X-Worker`) that gave its latest answer."""

    def __init__(self, url: str, headers: dict) -> None:
        self.worker = ""
        self.client = httpx.Client(
            base_url=url,
            headers=headers,
            timeout=120.0,
            limits=httpx.Limits(max_connections=1),
            event_hooks={"response": [self._note]},
        )

    def _note(self, response: httpx.Response) -> None:
        self.worker = response.headers.get("x-worker", "")


def pinned_clients(url: str, headers: dict, attempts: int = 200) -> dict[str, Pinned]:
    """One connection per worker, by the worker of its first answer."""
    found: dict[str, Pinned] = {}
    for _ in range(attempts):
        pinned = Pinned(url, headers)
        pinned.client.get("/healthz")
        if pinned.worker and pinned.worker not in found:
            found[pinned.worker] = pinned
        else:
            pinned.client.close()
        if len(found) == WORKERS:
            return found
    raise RuntimeError(f"{attempts} connections reached only workers {sorted(found)}")


@dataclass
class Visibility:
    kind: WriteKind
    delays_s: list[float]
    polls_s: list[float]  # round trip of each asking request
    misses: int  # writes the other worker never showed within VISIBLE_WITHIN_S
    skipped: int  # samples where both answers came from one worker (a connection was replaced)


def visibility(url: str, headers: dict, kind: WriteKind, indices: range) -> Visibility:
    """Write through one worker, ask the other until it shows the write; alternate the direction."""
    pinned = pinned_clients(url, headers)
    result = Visibility(kind, [], [], 0, 0)
    try:
        for n, i in enumerate(indices):
            writer, reader = sorted(pinned.values(), key=lambda p: p.worker, reverse=n % 2 == 1)
            kind.send(writer.client, i)
            acknowledged, wrote_on = time.perf_counter(), writer.worker
            while True:
                asked = time.perf_counter()
                shown = kind.seen(reader.client, i)
                answered = time.perf_counter()
                result.polls_s.append(answered - asked)
                if shown or answered - acknowledged > VISIBLE_WITHIN_S:
                    break
            if reader.worker == wrote_on:  # a connection was replaced and reached the writer's worker
                result.skipped += 1
                for old in pinned.values():
                    old.client.close()
                pinned = pinned_clients(url, headers)
            elif shown:
                result.delays_s.append(answered - acknowledged)
            else:
                result.misses += 1
    finally:
        for old in pinned.values():
            old.client.close()
    return result


# ---------------------------------------------------------------------------------------------- the run
def filesystem(path: Path) -> str:
    """The type and device of the mount holding `path` (what an fsync costs depends on it)."""
    best = ("", "unknown", "filesystem")
    for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines():
        device, mount, kind = line.split()[:3]
        if str(path.resolve()).startswith(mount.rstrip("/") + "/") and len(mount) >= len(best[0]):
            best = (mount, kind, device)
    return f"{best[1]} ({best[2]})"


def _ms(values: Sequence[float], q: float) -> str:
    return f"{np.percentile(np.asarray(values) * 1000, q):.1f}" if len(values) else "n/a"


def rates_table(rates: list[Rate]) -> str:
    lines = [
        "| write | per request | clients | requests | accepted | wall s | accepted/s | requests/s | p50 ms | "
        "p99 ms | connections per worker |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rates:
        spread = " / ".join(str(n) for _, n in r.workers.most_common())
        lines.append(
            f"| {r.kind.name} | {r.kind.batch} | {r.clients} | {len(r.seconds):,} | "
            f"{r.units:,} {r.kind.unit} | "
            f"{r.wall_s:.1f} | {r.units / r.wall_s:,.0f} | {len(r.seconds) / r.wall_s:,.0f} | "
            f"{_ms(r.seconds, 50)} | {_ms(r.seconds, 99)} | {spread} |"
        )
    return "\n".join(lines)


def visibility_table(results: list[Visibility]) -> str:
    lines = [
        "| write | samples | visible on the other worker p50 ms | p99 ms | max ms | not visible in 30 s | "
        "asking round trip p50 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for v in results:
        worst = f"{max(v.delays_s) * 1000:.1f}" if v.delays_s else "n/a"
        lines.append(
            f"| {v.kind.name} (per request {v.kind.batch}) | {len(v.delays_s)} | {_ms(v.delays_s, 50)} | "
            f"{_ms(v.delays_s, 99)} | {worst} | {v.misses} | {_ms(v.polls_s, 50)} |"
        )
    return "\n".join(lines)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--index", type=Path, default=ROOT / "indexes" / "movies", help="a MovieLens index root"
    )
    parser.add_argument("--name", default="movies", help="the collection's name")
    parser.add_argument("--clients", default="1,8", help="concurrent writers, comma-separated")
    parser.add_argument("--batches", default="1,100", help="events per request, comma-separated")
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per pass of batch 1")
    parser.add_argument(
        "--events", type=int, default=50_000, help="measured events per pass of larger batches"
    )
    parser.add_argument("--deletes", type=int, default=1000, help="measured deletes per pass")
    parser.add_argument("--upserts", type=int, default=200, help="measured upserts per pass")
    parser.add_argument("--samples", type=int, default=200, help="visibility samples per write kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    parser.add_argument("--logs", type=Path, default=ROOT / "bench" / "out" / "writes")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="where the served copy and its write log go (default: a temp dir)",
    )
    return parser.parse_args()


def main() -> None:
    args = arguments()
    clients = [int(c) for c in args.clients.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    args.logs.mkdir(parents=True, exist_ok=True)
    version = resolve_artifact(args.index)
    ids = read_ids(version)
    behaviour = Behaviour(version / "behaviour")
    counts = np.asarray(behaviour.counts)
    rng = random.Random(args.seed)
    rated = [ids[row] for row in np.argsort(-counts, kind="stable")[:500].tolist()]  # events name these
    spare = sorted(set(ids) - set(rated))
    rng.shuffle(spare)  # deletes take these, so no event names a deleted item
    start_time = int(behaviour.params["reference_time"] or 0) + 60
    deletes_needed = sum(2 * c + args.deletes for c in clients) + args.samples  # warm-ups included
    if deletes_needed > len(spare):
        raise SystemExit(f"{deletes_needed} deletes asked for, but only {len(spare)} items can be deleted")
    token = secrets.token_hex(16)
    headers = {"Authorization": f"Bearer {token}"}  # for a service that guards its writes
    print(f"Machine: {cpu_model()}, {usable_cores()} usable cores; {versions('fastapi', 'uvicorn', 'httpx')}")
    loads = [load_average()]
    print(f"Load average at start: {loads[0]}", flush=True)
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="searchrec-writes-", dir=args.work) as folder:
        copy = Path(folder) / args.name
        disk = filesystem(copy.parent)
        shutil.copytree(args.index, copy, ignore=shutil.ignore_patterns("cache"))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "api.cli", "serve", "--index", f"{args.name}={copy}"]
        argv += ["--workers", str(WORKERS), "--host", "127.0.0.1", "--port", str(port)]
        env = {"PYTHONPATH": str(ROOT), "SEARCHREC_ADMIN_TOKEN": token}

        def ready(body: dict) -> bool:
            return len(body.get("workers", [])) >= WORKERS

        rates: list[Rate] = []
        seen: list[Visibility] = []
        with serving(argv, f"{url}/readyz", ready, args.logs / "serve.log", env):

            def passes(kind: WriteKind, first: int, per_pass: int) -> int:
                """One throughput pass of `kind` per client count, from index `first`; the next free one."""
                for c in clients:
                    span = range(first, first + 2 * c + per_pass)  # 2 per client warm up
                    rates.append(throughput(url, headers, kind, span, c, 2 * c))
                    first = span.stop
                    print(rates_table(rates[-1:]).splitlines()[-1], flush=True)
                return first

            def visible(kind: WriteKind, first: int, samples: int) -> None:
                seen.append(visibility(url, headers, kind, range(first, first + samples)))
                print(visibility_table(seen[-1:]).splitlines()[-1], flush=True)
                loads.append(load_average())

            next_index = 0
            for batch in batches:
                per_pass = args.requests if batch == 1 else max(1, args.events // batch)
                next_index = passes(events_kind(args.name, rated, batch, start_time), next_index, per_pass)
            visible(events_kind(args.name, rated, 1, start_time), next_index, args.samples)
            upserts = upsert_kind(args.name)
            visible(upserts, passes(upserts, 0, args.upserts), min(args.samples, 50))
            deletes = delete_kind(args.name, spare)
            visible(deletes, passes(deletes, 0, args.deletes), args.samples)
    text = "\n\n".join(
        [
            rates_table(rates),
            visibility_table(seen),
            f"`serve --workers {WORKERS}` on a copy of {args.index.name} ({len(ids):,} items; its write log "
            f"on {disk}), client and server on one machine: {cpu_model()}, {usable_cores()} usable cores. "
            f"Load average (1, 5, 15 min) at the start {loads[0]}, after the events {loads[1]}, after the "
            f"upserts {loads[2]}, at the end {loads[3]}.",
        ]
    )
    print("\n" + text, flush=True)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
