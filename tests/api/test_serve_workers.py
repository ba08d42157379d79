"""`searchrec serve --workers 2` as real processes on 127.0.0.1: both workers answer alike, `/metrics` counts
both, and a reload (the admin route or `--watch`) switches both without failing a request.

Which worker accepts a connection is the kernel's choice, so the tests send queries in bounded rounds until
both workers (told apart by the `X-Worker` header) have answered. Waits poll toward a deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from indexer.build import build_collection
from indexer.config import BuildConfig
from indexer.encoders.embedding_cache import CachedEncoder
from indexer.encoders.torch import Encoder
from indexer.versions import VersionStore
from tests.conftest import SCIFACT, SLICE_DOCS

REPO = Path(__file__).resolve().parents[2]
TOKEN = "workers-admin-token"
WORKERS = 2
CLIENTS = 8
STARTUP_DEADLINE_S = 600.0  # two workers loading torch on a busy two-core machine; a bound, not a pause
POLL_S = 0.2
MAX_ROUNDS = 50
QUERIES = [
    "regulatory T cells in autoimmunity",
    "cancer risk",
    "protein folding",
    "immune response to infection",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(root: Path, log: Path, *options: str) -> Iterator[str]:
    """`python -m api.cli serve` on this checkout with two workers; yields its URL once both have loaded."""
    port = _free_port()
    env = {**os.environ, "SEARCHREC_ADMIN_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "api.cli", "serve", "--index", f"scifact={root}", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "--workers", str(WORKERS), *options], cwd=REPO, env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_every_worker_loaded(url, process, log)
        yield url
    finally:
        process.send_signal(signal.SIGINT)  # the supervisor stops its workers, then exits
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_every_worker_loaded(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if len(httpx.get(f"{url}/readyz", timeout=10).json().get("workers", [])) == WORKERS:
                return
        except (httpx.HTTPError, ValueError):
            pass  # not accepting yet
        time.sleep(POLL_S)
    pytest.fail(f"the workers did not load within {STARTUP_DEADLINE_S} s:\n{log.read_text()[-4000:]}")


def _search(url: str, query: str) -> tuple[int, dict]:
    """(answering worker's pid, answer) on a fresh connection, so the kernel picks a worker each time."""
    response = httpx.post(f"{url}/search", json={"query": query, "k": 5}, timeout=60)
    assert response.status_code == 200, response.text
    return int(response.headers["x-worker"]), response.json()


def _rounds_until_both_workers_answer(url: str, pool: ThreadPoolExecutor) -> list[tuple[int, str, dict]]:
    """(pid, query, answer) for every query sent, in rounds of each query from every client, until each
    worker has answered each query."""
    answers: list[tuple[int, str, dict]] = []
    for _ in range(MAX_ROUNDS):
        batch = [q for q in QUERIES for _ in range(CLIENTS // 2)]
        answers += [
            (pid, q, a) for q, (pid, a) in zip(batch, pool.map(lambda q: _search(url, q), batch), strict=True)
        ]
        if all({pid for pid, q, _ in answers if q == query} == _pids(url) for query in QUERIES):
            return answers
    pytest.fail(f"after {MAX_ROUNDS} rounds some query was answered by one worker only")


def _pids(url: str) -> set[int]:
    return {worker["pid"] for worker in httpx.get(f"{url}/readyz", timeout=10).json()["workers"]}


def _ranking(answer: dict) -> list[tuple[str, float]]:
    return [(hit["id"], hit["score"]) for hit in answer["results"]]


def _searches_counted(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith('searchrec_requests_total{route="/search",status="200"}'):
            return float(line.split()[-1])
    return 0.0


def _publish(root: Path, encoder: Encoder, embeddings: Path) -> str:
    """Build the slice again into `root` as its next version (embeddings from the cache)."""
    cached = CachedEncoder(encoder, embeddings)
    build_collection(SCIFACT, root, BuildConfig(limit=SLICE_DOCS), encoder=cached, progress=False)
    return str(VersionStore(root).current_name())


def _reload(url: str) -> httpx.Response:
    return httpx.post(f"{url}/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300)


@pytest.fixture(scope="module")
def root(scifact_slice_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("workers") / "scifact"
    shutil.copytree(scifact_slice_root, copy)
    return copy


@pytest.fixture(scope="module")
def served(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(root, tmp_path_factory.mktemp("workers-log") / "serve.log") as url:
        yield url


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(CLIENTS) as executor:
        yield executor


def test_watch_switches_every_worker(
    scifact_slice_root: Path,
    encoder: Encoder,
    slice_embeddings: Path,
    tmp_path: Path,
    pool: ThreadPoolExecutor,
) -> None:
    # first in the module: its server runs alone, before the module's shared one starts
    root = tmp_path / "scifact"
    shutil.copytree(scifact_slice_root, root)
    with serving(root, tmp_path / "serve.log", "--watch", "0.2") as url:
        new = _publish(root, encoder, slice_embeddings)
        switched: set[int] = set()
        for _ in range(MAX_ROUNDS * 4):  # each worker's watcher polls on its own; stop once both answer new
            for pid, answer in pool.map(lambda q: _search(url, q), QUERIES * 2):
                if answer["index_version"] == new:
                    switched.add(pid)
            if switched == _pids(url):
                break
        assert switched == _pids(url)
        assert all(w["collections"] == {"scifact": new} for w in httpx.get(f"{url}/readyz").json()["workers"])


def test_two_workers_answer_alike_and_metrics_count_both(served: str, pool: ThreadPoolExecutor) -> None:
    assert len(_pids(served)) == WORKERS
    before = _searches_counted(served)
    answers = _rounds_until_both_workers_answer(served, pool)
    for query in QUERIES:
        by_worker = {pid: answer for pid, q, answer in answers if q == query}
        assert len(by_worker) == WORKERS
        first, second = by_worker.values()
        assert _ranking(first) == _ranking(second) and len(first["results"]) == 5
        assert first["index_version"] == second["index_version"]
    # whichever worker answers the scrape, it counts the searches both answered
    assert _searches_counted(served) - before == len(answers)


def test_admin_reload_switches_every_worker(
    served: str, root: Path, encoder: Encoder, slice_embeddings: Path, pool: ThreadPoolExecutor
) -> None:
    old = VersionStore(root).current_name()
    new = _publish(root, encoder, slice_embeddings)
    assert new != old
    reloaded = _reload(served)
    assert reloaded.status_code == 200, reloaded.text
    body = reloaded.json()
    assert body["versions"] == {"scifact": new}
    assert [w["versions"] for w in body["workers"]] == [{"scifact": new}] * WORKERS
    answers = _rounds_until_both_workers_answer(served, pool)
    assert {answer["index_version"] for _, _, answer in answers} == {new}


def test_no_request_fails_while_five_versions_are_published(
    served: str, root: Path, encoder: Encoder, slice_embeddings: Path
) -> None:
    failures: list[str] = []
    seen: set[tuple[int, str]] = set()
    stop = threading.Event()
    before = VersionStore(root).current_name()

    def client() -> None:
        for _ in range(400):  # bounded, whatever happens to the publishing side
            if stop.is_set():
                return
            response = httpx.post(f"{served}/search", json={"query": "immune response", "k": 5}, timeout=60)
            if response.status_code != 200 or len(response.json()["results"]) != 5:
                failures.append(f"{response.status_code}: {response.text[:300]}")
            else:
                seen.add((int(response.headers["x-worker"]), response.json()["index_version"]))

    clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for each in clients:
        each.start()
    published = []
    try:
        for _ in range(5):
            published.append(_publish(root, encoder, slice_embeddings))
            reloaded = _reload(served)
            assert reloaded.status_code == 200, reloaded.text
            assert {w["versions"]["scifact"] for w in reloaded.json()["workers"]} == {published[-1]}
    finally:
        stop.set()
        for each in clients:
            each.join()
    assert failures == []
    assert {pid for pid, _ in seen} == _pids(served), "both workers answered the load"
    assert {version for _, version in seen} <= {before, *published}
