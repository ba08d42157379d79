"""Worker processes: thread shares, the environment set before loading, and a collection that answers the
same in a process forked after it loaded (its RocksDB handle, recall pool and encoder renewed there)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time
from pathlib import Path

import pytest

from api.workers import (
    MULTIPROC_ENV,
    THREAD_ENV,
    listening_socket,
    run_directory,
    threads_per_worker,
    worker_environment,
)
from retrieval.service import CollectionService

CHILD_DEADLINE_S = 300.0  # a bound for a forked search on a busy machine, not a pause


def test_each_worker_gets_its_share_of_the_cores_and_at_least_one() -> None:
    assert threads_per_worker(1, cores=8) == 8
    assert threads_per_worker(3, cores=8) == 2
    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(4, cores=2) == 1
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        threads_per_worker(0, cores=2)


def test_worker_environment_is_set_for_the_block_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (MULTIPROC_ENV, *THREAD_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "7")  # the user's own setting wins
    with run_directory() as run_dir:
        with worker_environment(run_dir, threads=3):
            assert os.environ[MULTIPROC_ENV] == str(run_dir / "metrics")
            assert (run_dir / "metrics").is_dir()
            assert os.environ["OMP_NUM_THREADS"] == os.environ["OPENBLAS_NUM_THREADS"] == "3"
            assert os.environ["MKL_NUM_THREADS"] == "7"
        assert MULTIPROC_ENV not in os.environ
        assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "7"
    assert not run_dir.exists()


def _answer(service: CollectionService, query: str) -> list:
    answer = service.search(query, k=5)
    return [[hit.id, round(hit.score, 6), hit.title, hit.branches] for hit in answer.hits]


def _read_until_closed(fd: int, deadline: float) -> bytes:
    """Everything written to `fd` until the writer closes it or `deadline` passes (then what came)."""
    data = b""
    while (left := deadline - time.monotonic()) > 0 and select.select([fd], [], [], left)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def _exit_status(pid: int, deadline: float) -> int:
    """The child's wait status once it exits, or -1 if it has not by `deadline`."""
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    return -1


def test_a_forked_process_answers_like_the_one_that_loaded(scifact_slice_root: Path) -> None:
    """What `serve --workers` relies on: a collection loaded, then a fork that searches with it (docstore
    reads, the recall thread pool, the query encoder) and answers exactly as the parent does."""
    service = CollectionService.open(scifact_slice_root)
    queries = ["regulatory T cells in autoimmunity", "cancer risk"]
    expected = [_answer(service, q) for q in queries]
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer, report, and leave without running the parent's exit handlers
        code = 1
        try:
            os.close(reading)
            with os.fdopen(writing, "w") as out:
                json.dump([_answer(service, q) for q in queries], out)
            code = 0
        finally:
            os._exit(code)
    os.close(writing)
    deadline = time.monotonic() + CHILD_DEADLINE_S
    status = -1
    try:
        forked = json.loads(_read_until_closed(reading, deadline) or b"null")
        status = _exit_status(pid, deadline)
    finally:
        os.close(reading)
        if status == -1:  # not reaped: it hung, or reading failed
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        service.close()
    assert status != -1, "the forked search hung"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"the forked search failed (status {status})"
    assert forked == json.loads(json.dumps(expected))
    assert all(answer for answer in forked)


def test_the_workers_socket_is_tcp_so_answers_are_not_held_back() -> None:
    """asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections of a socket whose protocol
    is TCP; with protocol 0 a keep-alive client waited ~40 ms for every answer."""
    with listening_socket("127.0.0.1", 0) as listening:
        assert listening.proto == socket.IPPROTO_TCP
        assert listening.get_inheritable()
        host, port = listening.getsockname()
        assert host == "127.0.0.1" and port > 0
