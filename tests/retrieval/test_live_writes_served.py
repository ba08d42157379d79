"""Real-time writes against `searchrec serve` as real processes: a write one worker acknowledged (events, an
item upsert) reaches the other, and acknowledged writes survive `kill -9` of the whole service.

Which worker takes a connection is the kernel's choice, and each worker applies the others' writes when it
next polls the log, so the test asks in bounded rounds until both workers have answered with the write
applied. Waits poll toward a deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import WRITE_AUTH, WRITE_TOKEN

REPO = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE_S = 600.0  # loading on a busy two-core machine; a bound, not a pause
MAX_ROUNDS = 200
T = 1_700_100_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(root: Path, log: Path, workers: int) -> Iterator[tuple[str, subprocess.Popen]]:
    port = _free_port()
    command = [sys.executable, "-m", "api.cli", "serve", "--index", f"shops={root}", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "SEARCHREC_ADMIN_TOKEN": WRITE_TOKEN}
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while not _ready(url, workers):
            if process.poll() is not None:
                pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"not ready within {STARTUP_DEADLINE_S} s:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        yield url, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _ready(url: str, workers: int) -> bool:
    try:
        body = httpx.get(f"{url}/readyz", timeout=10).json()
    except (httpx.HTTPError, ValueError):
        return False
    return workers == 1 or len(body.get("workers", [])) == workers


def _personal(url: str, user: str) -> tuple[int, bool]:
    """(answering worker, whether its recommendation used the user's own events) on a fresh connection."""
    response = httpx.post(f"{url}/recommend", json={"user_id": user, "k": 5}, timeout=60)
    assert response.status_code == 200, response.text
    branches = set().union(*(hit["branches"] for hit in response.json()["results"]))
    return int(response.headers["x-worker"]), bool(branches - {"popular"})


def test_writes_reach_every_worker_and_survive_kill_9(shops_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "shops"
    shutil.copytree(shops_root, root)
    with serving(root, tmp_path / "serve.log", workers=2) as (url, process):
        pids = {worker["pid"] for worker in httpx.get(f"{url}/readyz", timeout=10).json()["workers"]}
        events = [{"user_id": "fresh", "item_id": "sushi-il-0", "timestamp": T}]
        written = httpx.post(
            f"{url}/collections/shops/events", json={"events": events}, headers=WRITE_AUTH, timeout=60
        )
        assert written.status_code == 200, written.text
        applied: set[int] = set()
        for _ in range(MAX_ROUNDS):
            pid, personal = _personal(url, "fresh")
            if personal:
                applied.add(pid)
            if applied == pids:
                break
        assert applied == pids, f"workers that applied the events: {applied} of {pids}"
        shop = {"title": "Falafel corner", "text": "falafel and hummus, open late", "category": "falafel"}
        put = httpx.put(f"{url}/collections/shops/items/falafel-1", json=shop, headers=WRITE_AUTH, timeout=60)
        assert put.status_code == 200, put.text
        found_by: set[int] = set()
        for _ in range(MAX_ROUNDS):
            answer = httpx.post(f"{url}/search", json={"query": "falafel hummus", "k": 3}, timeout=60)
            if [hit["id"] for hit in answer.json()["results"]][:1] == ["falafel-1"]:
                found_by.add(int(answer.headers["x-worker"]))
            if found_by == pids:
                break
        assert found_by == pids, f"workers that found the written item: {found_by} of {pids}"
        deleted = httpx.delete(f"{url}/collections/shops/items/books-il-0", headers=WRITE_AUTH, timeout=60)
        assert deleted.status_code == 200 and deleted.json()["accepted"] == 1
        os.killpg(process.pid, signal.SIGKILL)  # right after the acknowledgement: no shutdown at all
        process.wait()
    with serving(root, tmp_path / "restart.log", workers=1) as (url, _):
        assert httpx.get(f"{url}/collections/shops/items/books-il-0", timeout=10).status_code == 404
        assert _personal(url, "fresh")[1]
        item = httpx.get(f"{url}/collections/shops/items/falafel-1", timeout=10)
        assert item.status_code == 200 and item.json()["fields"]["title"] == "Falafel corner", item.text
