"""Soak: `searchrec serve` under a mixed load for many minutes while new versions are published and reloaded.

The demo's collections are copied to a temporary folder (the copies are what the service serves and what
gets new versions) and served with `--workers` workers and an admin token: SciFact with its ranker (search),
MovieLens (filtered search, recommend, similar, items), GeoNames cities (search near a place, within a
radius). `--clients` closed-loop clients (each with its own keep-alive connection) send a seeded mix of those
requests for `--minutes` minutes; every `--publish-every` seconds the SciFact copy gets a new version (its
current files under a new version name, checksummed again) and `POST /admin/reload` switches every worker to
it. Prints one row per minute (requests, errors, p50/p99) and the service's memory at the start and the end.

An error is any answer other than 200, or a 200 whose body lacks results, or a reload that does not answer
200. The report ends with the targets of issue #15: no error, memory growth under 5 %.

Usage: .venv/bin/python bench/soak.py [--minutes 10] [--clients 8] [--workers 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadgen import free_port, memory_kib, process_tree, serving
from machine import cpu_model, load_average, usable_cores, versions

from indexer.artifact import read_manifest, write_manifest
from indexer.manifests import COLLECTION_KIND
from indexer.versions import VersionStore, resolve_artifact

ROOT = Path(__file__).resolve().parents[1]
K = 10


@dataclass
class Outcome:
    minute: int
    kind: str
    seconds: float
    ok: bool
    detail: str = ""


@dataclass
class Log:
    """Every outcome, appended by the clients and the publisher."""

    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)


def republish(root: Path) -> str:
    """Publish the current version's files again under a new version name (its manifest rewritten for that
    name, every file checksummed again); return the name."""
    current = resolve_artifact(root)
    manifest = read_manifest(current, verify=False)
    with VersionStore(root).build(keep=3) as (name, staging):
        for path in current.iterdir():
            if path.name == "manifest.json":
                continue
            target = staging / path.name
            if path.is_dir():
                shutil.copytree(path, target)
            else:
                shutil.copy2(path, target)
        write_manifest(staging, kind=COLLECTION_KIND, params=manifest["params"], parts={"version": name})
    return name


def request_mix(data: Path, rng: random.Random) -> list[tuple[str, str, str, dict | None]]:
    """(kind, method, path, body) templates drawn from the demo's own data, in a seeded shuffle."""
    queries = [json.loads(line)["text"] for line in (data / "scifact" / "queries.jsonl").open()][:300]
    movies = [json.loads(line) for line in (ROOT / "indexes" / "inputs" / "movies.jsonl").open()]
    cities = [json.loads(line) for line in (ROOT / "indexes" / "inputs" / "cities.jsonl").open()]
    users = sorted({line.split(",")[0] for line in list((data / "movielens" / "ratings.csv").open())[1:]})
    mix: list[tuple[str, str, str, dict | None]] = []
    for _ in range(2000):
        kind = rng.choice(["search", "filtered", "geo", "recommend", "similar", "items"])
        if kind == "search":
            body = {"query": rng.choice(queries), "k": K}
            mix.append((kind, "POST", "/collections/scifact/search", body))
        elif kind == "filtered":
            movie = rng.choice(movies)
            tags = [t for t in str(movie.get("tags") or "").split("|") if t] or ["Drama"]
            body = {"query": movie["title"].split("(")[0], "k": K, "filters": {"tags": rng.choice(tags)}}
            mix.append((kind, "POST", "/collections/movies/search", body))
        elif kind == "geo":
            city = rng.choice(cities)
            near = {"lat": float(city["lat"]) + rng.uniform(-0.5, 0.5), "lon": float(city["lon"])}
            body = {"query": city["title"], "k": K, "location": near, "radius_km": 300}
            mix.append((kind, "POST", "/collections/cities/search", body))
        elif kind == "recommend":
            mix.append(
                (kind, "POST", "/collections/movies/recommend", {"user_id": rng.choice(users), "k": K})
            )
        elif kind == "similar":
            mix.append((kind, "GET", f"/collections/movies/similar/{rng.choice(movies)['id']}?k={K}", None))
        else:
            mix.append((kind, "GET", f"/collections/movies/items/{rng.choice(movies)['id']}", None))
    return mix


def client(url: str, mix: list, start: int, stop_at: float, began: float, log: Log) -> None:
    with httpx.Client(base_url=url, timeout=120.0) as http:
        i = start
        while time.monotonic() < stop_at:
            kind, method, path, body = mix[i % len(mix)]
            i += 1
            sent = time.monotonic()
            try:
                response = http.request(method, path, json=body)
                ok = response.status_code == 200 and ("results" in response.json() or kind == "items")
                detail = "" if ok else f"{response.status_code} {response.text[:200]}"
            except (httpx.HTTPError, ValueError) as error:
                ok, detail = False, f"{type(error).__name__}: {error}"
            done = time.monotonic()
            log.add(Outcome(int((sent - began) // 60), kind, done - sent, ok, detail))


def publisher(
    url: str, root: Path, token: str, every_s: float, stop_at: float, began: float, log: Log
) -> None:
    while time.monotonic() + every_s < stop_at:
        time.sleep(every_s)
        sent = time.monotonic()
        name = republish(root)
        response = httpx.post(
            f"{url}/admin/reload", headers={"Authorization": f"Bearer {token}"}, json={}, timeout=300
        )
        ok = response.status_code == 200
        log.add(
            Outcome(
                int((sent - began) // 60),
                "reload",
                time.monotonic() - sent,
                ok,
                f"{name} {response.status_code}",
            )
        )


def service_memory(root_pid: int) -> tuple[int, int]:
    """(RSS, PSS) KiB of the serve process and its workers together."""
    every = [memory_kib(pid) for pid in process_tree(root_pid)]
    return sum(m[0] for m in every), sum(m[1] for m in every)


def _mib(sample: tuple[int, int] | None) -> str:
    return "" if sample is None else f"{sample[0] / 1024:,.0f} / {sample[1] / 1024:,.0f}"


def sample_memory(root_pid: int, stop_at: float, began: float, memory: dict) -> None:
    """The service's memory at the end of every minute, keyed by the minute (0-based)."""
    minute = 0
    while (due := began + 60 * (minute + 1)) <= stop_at + 1:
        time.sleep(max(0.0, due - time.monotonic()))
        memory[minute] = service_memory(root_pid)
        minute += 1


def report(log: Log, memory: dict, args: argparse.Namespace) -> str:
    lines = [
        "| minute | requests | errors | reloads | p50 ms | p99 ms | RSS / PSS MiB at its end |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_minute: dict[int, list[Outcome]] = {}
    for outcome in log.outcomes:
        by_minute.setdefault(outcome.minute, []).append(outcome)
    for minute in sorted(by_minute):
        rows = by_minute[minute]
        asked = [o for o in rows if o.kind != "reload"]
        times = np.array([o.seconds for o in asked]) * 1000 if asked else np.zeros(1)
        lines.append(
            f"| {minute + 1} | {len(asked):,} | {sum(not o.ok for o in rows)} | "
            f"{sum(o.kind == 'reload' for o in rows)} | "
            f"{np.percentile(times, 50):.1f} | {np.percentile(times, 99):.1f} | {_mib(memory.get(minute))} |"
        )
    total = [o for o in log.outcomes if o.kind != "reload"]
    failed = [o for o in log.outcomes if not o.ok]
    reloads = [o for o in log.outcomes if o.kind == "reload"]
    start_rss, start_pss = memory["start"]
    end_rss, end_pss = memory["end"]
    growth = (end_pss - start_pss) / start_pss * 100
    kinds = {kind: sum(o.kind == kind for o in total) for kind in sorted({o.kind for o in total})}
    summary = [
        "",
        f"{len(total):,} requests ({', '.join(f'{k} {n:,}' for k, n in kinds.items())}), "
        f"{len(reloads)} versions published and reloaded, {len(failed)} errors, over {args.minutes} minutes "
        f"with {args.clients} clients and {args.workers} workers.",
        f"Service memory (serve process and workers): RSS {start_rss / 1024:,.0f} → "
        f"{end_rss / 1024:,.0f} MiB, "
        f"PSS {start_pss / 1024:,.0f} → {end_pss / 1024:,.0f} MiB ({growth:+.1f} % PSS), "
        "measured once two versions had been published and at the end.",
        f"Targets: errors = 0: {'met' if not failed else 'missed'}; memory growth < 5 %: "
        f"{'met' if growth < 5 else 'missed'}.",
    ]
    if failed:
        summary.append("First errors: " + "; ".join(f"{o.kind}: {o.detail}" for o in failed[:5]))
    return "\n".join(lines + summary)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=usable_cores())
    parser.add_argument("--publish-every", type=float, default=60.0, help="seconds between new versions")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    parser.add_argument("--logs", type=Path, default=ROOT / "bench" / "out" / "soak")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    args.logs.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    mix = request_mix(ROOT / "data", rng)
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="searchrec-soak-") as folder:
        copies = {}
        for name in ("scifact", "movies", "cities"):
            copies[name] = Path(folder) / name
            shutil.copytree(ROOT / "indexes" / name, copies[name], ignore=shutil.ignore_patterns("cache"))
        port = free_port()
        argv = [str(Path(sys.executable).with_name("searchrec")), "serve", "--workers", str(args.workers)]
        argv += [f"--index={name}={root}" for name, root in copies.items()]
        argv += [
            f"--ranker=scifact={ROOT / 'rankers' / 'scifact'}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        url = f"http://127.0.0.1:{port}"

        def ready(body: dict) -> bool:
            return args.workers == 1 or len(body.get("workers", [])) >= args.workers

        libraries = versions("fastapi", "uvicorn", "httpx")
        print(f"Machine: {cpu_model()}, {usable_cores()} usable cores; {libraries}")
        print(f"Load average at start: {load_average()}", flush=True)
        env = {"SEARCHREC_ADMIN_TOKEN": token}
        with serving(argv, f"{url}/readyz", ready, args.logs / "serve.log", env) as process:
            log = Log()
            began = time.monotonic()
            stop_at = began + args.minutes * 60
            memory: dict = {}
            threads = [
                threading.Thread(target=client, args=(url, mix, i * 97, stop_at, began, log))
                for i in range(args.clients)
            ]
            threads.append(
                threading.Thread(
                    target=publisher,
                    args=(url, copies["scifact"], token, args.publish_every, stop_at, began, log),
                )
            )
            threads.append(threading.Thread(target=sample_memory, args=(process.pid, stop_at, began, memory)))
            for thread in threads:
                thread.start()
            # after two versions were published: each worker then holds its own copy of the served version
            # (README, "Workers and memory"), and growth from there on is what a long run would keep
            time.sleep(min(2 * args.publish_every + 5, args.minutes * 30))
            memory["start"] = service_memory(process.pid)
            for thread in threads:
                thread.join()
            memory["end"] = service_memory(process.pid)
        text = report(log, memory, args)
        text += f"\n\nMachine: {cpu_model()}; load average at end {load_average()}\n"
        print(text, flush=True)
        if args.out is not None:
            args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
