"""Streaming equals rebuilding (issue #13): `/recommend` after events streamed through `POST /events` against
a build that had those events from the start.

MovieLens ml-latest-small, each user's events in the build's time order (`indexer.histories.time_order`: by
timestamp, ties by movie id), split by `jobs.evaluation.recommend.streaming_split`: the last event is held
out (the single relevant item), the second-to-last is the one streamed, the rest is the base. Three answers
to `/recommend` (k = 10, `exclude_seen` left at its default, true) for every user with a held-out event:

- A: the collection built on the base (`searchrec build`, as the Makefile builds the demo);
- A + stream: A served by `searchrec serve`, then every user's second-to-last event sent through
  `POST /collections/movies/events` (one request per user, its original timestamp), asked in that process;
- B: the collection built on the base plus those events (each user's last event left out).

The claim is NDCG@10 of A + stream within 0.002 of B, and both clearly above A. The primary comparison
uses the fusion order (no ranker); `--ranker` also trains one recommendation ranker on A's events
(`searchrec train-ranker`) and serves it on all three. Every request goes over HTTP to a real `serve`
process (one worker, so a write is applied before its 200). The builds, the item2vec training and the
ranker are seeded, so a rerun gives the same numbers.

Everything goes under `--work` (the split CSVs, the three index roots, the ranker, server logs, and
`runs.json` with every user's list); roots already built there are reused, `--fresh` rebuilds them.

Usage: .venv/bin/python bench/streaming_vs_rebuild.py [--work indexes/streaming] [--ranker] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadgen import free_port, serving
from machine import cpu_model, load_average, usable_cores

from indexer.events import read_events
from indexer.schemas import EventSchema
from jobs.evaluation.recommend import Event, evaluate_recommendations, streaming_split

ROOT = Path(__file__).resolve().parents[1]
NAME = "movies"
COLUMNS = ("userId", "movieId", "timestamp")  # what data/configs/movies.toml maps
TOLERANCE = 0.002
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def cli(*args: str | Path) -> float:
    """Run `searchrec ARGS` from this checkout; its wall seconds."""
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "api.cli", *map(str, args)], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - start


def write_events(path: Path, events: Iterable[Event]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows((user, item, int(ts)) for user, item, ts in events)


def build(work: Path, name: str, behaviour: Path, fresh: bool, cache_from: Path | None) -> float | None:
    """Build `work/name` on `behaviour` (None: reused as it was)."""
    root = work / name
    if (root / "CURRENT").is_file() and not fresh:
        return None
    shutil.rmtree(root, ignore_errors=True)
    if cache_from is not None and cache_from.is_dir():  # embeddings of the same texts: skips the encoder
        shutil.copytree(cache_from, root / "cache")
    config = ROOT / "data" / "configs" / "movies.toml"
    return cli(
        "build", "--corpus", work / "movies.jsonl", "--behaviour", behaviour, "--config", config,
        "--out", root, "--no-progress",
    )  # fmt: skip


def fresh_copy(work: Path, source: str, name: str) -> Path:
    """A copy of a built root without its write log, for a service to stream into."""
    copy = work / name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(work / source, copy, ignore=shutil.ignore_patterns("writes"))
    return copy


@dataclass
class Service:
    """A running `searchrec serve` (one worker), seen through one keep-alive connection."""

    client: httpx.Client
    token: str

    def recommend_all(self, users: list[str], k: int) -> tuple[dict[str, list[str]], set[str]]:
        """Every user's `/recommend` ids, and the scorers that answered."""
        lists: dict[str, list[str]] = {}
        scorers: set[str] = set()
        for user in users:
            response = self.client.post(f"/collections/{NAME}/recommend", json={"user_id": user, "k": k})
            response.raise_for_status()
            body = response.json()
            lists[user] = [str(hit["id"]) for hit in body["results"]]
            scorers.add(str(body.get("scorer", "")))
        return lists, scorers

    def stream(self, events: list[Event]) -> float:
        """Send each event in its own `POST /events`; wall seconds."""
        headers = {"Authorization": f"Bearer {self.token}"}  # for a service that guards its writes
        start = time.perf_counter()
        for user, item, ts in events:
            body = {"events": [{"user_id": user, "item_id": item, "timestamp": int(ts)}]}
            response = self.client.post(f"/collections/{NAME}/events", json=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"POST /events answered {response.status_code}: {response.text[:500]}")
        return time.perf_counter() - start


@contextmanager
def served(root: Path, logs: Path, ranker: Path | None) -> Iterator[Service]:
    """`searchrec serve` over `root` with one worker (so every write is applied before its 200), and
    `ranker` scoring its recommendations when given; stopped when the block ends."""
    port, token = free_port(), secrets.token_hex(16)
    argv = [sys.executable, "-m", "api.cli", "serve", "--index", f"{NAME}={root}", "--workers", "1"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    if ranker is not None:
        argv += ["--ranker", f"{NAME}={ranker}"]
    env = {"PYTHONPATH": str(ROOT), "SEARCHREC_ADMIN_TOKEN": token}
    url = f"http://127.0.0.1:{port}"
    with (
        serving(argv, f"{url}/readyz", lambda _: True, logs / f"{root.name}.log", env),
        httpx.Client(base_url=url, timeout=120.0) as client,
    ):
        yield Service(client, token)


def compare(
    work: Path, ranker: Path | None, users: list[str], streamed: list[Event], k: int
) -> dict[str, dict[str, list[str]]]:
    """The three runs (A, A + stream, B) with the fusion order or with `ranker`."""
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    suffix = "" if ranker is None else "+ranker"
    runs: dict[str, dict[str, list[str]]] = {}
    with served(fresh_copy(work, "A", f"A-stream{suffix}"), logs, ranker) as service:
        runs["A"], scorers = service.recommend_all(users, k)
        seconds = service.stream(streamed)
        print(f"streamed {len(streamed)} events in {seconds:.1f} s ({len(streamed) / seconds:.0f}/s)")
        runs["A + stream"], after = service.recommend_all(users, k)
    with served(work / "B", logs, ranker) as service:
        runs["B"], rebuilt = service.recommend_all(users, k)
    print(f"scorers: A {sorted(scorers)}, A + stream {sorted(after)}, B {sorted(rebuilt)}", flush=True)
    return runs


def table(
    metrics: dict[str, dict[str, float]], runs: dict[str, dict[str, list[str]]], k: int, scorer: str
) -> str:
    lines = [
        f"| {scorer} | NDCG@{k} | HR@{k} | MRR@{k} | coverage@{k} |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, values in metrics.items():
        lines.append(
            f"| {name} | {values[f'ndcg@{k}']:.4f} | {values[f'hr@{k}']:.4f} | {values[f'mrr@{k}']:.4f} | "
            f"{values[f'coverage@{k}']:.4f} |"
        )
    gap = metrics["A + stream"][f"ndcg@{k}"] - metrics["B"][f"ndcg@{k}"]
    lift = metrics["B"][f"ndcg@{k}"] - metrics["A"][f"ndcg@{k}"]
    same = sum(runs["A + stream"][u] == runs["B"][u] for u in runs["B"]) / len(runs["B"])
    lines += [
        "",
        f"A + stream − B: NDCG@{k} {gap:+.4f} (target within ±{TOLERANCE}: "
        f"{'met' if abs(gap) <= TOLERANCE else 'missed'}); B − A: {lift:+.4f}. "
        f"Identical top-{k} lists, A + stream against B: {same:.1%} of users.",
    ]
    return "\n".join(lines)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=ROOT / "indexes" / "streaming-vs-rebuild")
    parser.add_argument("--movielens", type=Path, default=ROOT / "data" / "movielens")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--ranker", action="store_true", help="also compare with a ranker trained on A")
    parser.add_argument("--fresh", action="store_true", help="rebuild the roots even when they exist")
    parser.add_argument(
        "--cache-from", type=Path, default=None, help="an index root's embedding cache to seed the builds"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"Machine: {cpu_model()}, {usable_cores()} usable cores; load average {load_average()}", flush=True)
    read = read_events(args.movielens / "ratings.csv", EventSchema(user_id="userId", item_id="movieId"))
    events = zip(read.user_ids.tolist(), read.item_ids.tolist(), read.timestamps.tolist(), strict=True)
    split = streaming_split(events)
    write_events(work / "A.csv", split.base)
    write_events(work / "B.csv", split.base + split.streamed)
    users = sorted(split.held_out)
    print(f"{len(split.base)} base events, {len(split.streamed)} streamed, {len(users)} held out", flush=True)
    if args.fresh or not (work / "movies.jsonl").is_file():
        cli("prepare", "movielens", "--data", args.movielens, "--out", work / "movies.jsonl")
    seconds = {"A": build(work, "A", work / "A.csv", args.fresh, args.cache_from)}
    seconds["B"] = build(work, "B", work / "B.csv", args.fresh, args.cache_from or work / "A" / "cache")
    print(f"build seconds (None: reused): {seconds}", flush=True)
    results: dict[str, dict] = {"fusion": {"runs": compare(work, None, users, split.streamed, args.k)}}
    if args.ranker:
        rankers = work / "rankers"
        if args.fresh or not (rankers / "CURRENT").is_file():
            shutil.rmtree(rankers, ignore_errors=True)
            cli(
                "train-ranker", "--index", work / "A", "--behaviour", work / "A.csv", "--out", rankers,
                "--workdir", work / "ranker-training", "--no-progress",
            )  # fmt: skip
        results["ranker"] = {"runs": compare(work, rankers, users, split.streamed, args.k)}
    sections = []
    with (work / "movies.jsonl").open(encoding="utf-8") as corpus:
        catalogue = sum(1 for line in corpus if line.strip())
    for scorer, result in results.items():
        result["metrics"] = {
            name: evaluate_recommendations(run, split.held_out, args.k, catalogue)
            for name, run in result["runs"].items()
        }
        sections.append(table(result["metrics"], result["runs"], args.k, scorer))
    (work / "runs.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    text = "\n\n".join(sections)
    text += (
        f"\n\n{len(users)} users, {len(split.base):,} base events, {len(split.streamed)} streamed. "
        f"Machine: {cpu_model()}, {usable_cores()} usable cores; load average at end {load_average()}.\n"
    )
    print(text, flush=True)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
