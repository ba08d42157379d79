"""What the HTTP load benchmark needs besides its servers: a closed-loop client, server processes started
and stopped on loopback, and their memory and CPU time read from /proc.

A closed loop of C clients: each client holds one keep-alive connection and sends its next query as soon as
its previous one is answered, taking queries from one shared list, so every query is asked exactly once per
pass. Latency is what the client saw, from sending to the parsed answer.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Answer:
    qid: str
    seconds: float
    status: int
    ids: list[str] = field(default_factory=list)
    worker: str = ""
    scorer: str = ""


@dataclass
class Pass:
    """One measured pass: every answer, the wall time of the whole pass, and the servers' CPU seconds."""

    answers: list[Answer]
    wall_s: float
    cpu_s: float


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ask(client: httpx.Client, url: str, qid: str, text: str, k: int) -> Answer:
    """One query; a transport failure (refused, timed out) is an answer with status 0."""
    start = time.perf_counter()
    try:
        response = client.post(url, json={"query": text, "k": k})
    except httpx.HTTPError:
        return Answer(qid=qid, seconds=time.perf_counter() - start, status=0)
    body = response.json() if response.status_code == 200 else {}
    took = time.perf_counter() - start
    return Answer(
        qid=qid,
        seconds=took,
        status=response.status_code,
        ids=[str(hit["id"]) for hit in body.get("results", [])],
        worker=response.headers.get("x-worker", ""),
        scorer=str(body.get("scorer", "")),
    )


def _drive(
    clients: Sequence[httpx.Client], url: str, queries: Sequence[tuple[str, str]], k: int
) -> list[Answer]:
    """Every query asked once, each client asking its next as soon as it has its previous answer."""
    pending = iter(queries)
    lock = threading.Lock()
    answers: list[Answer] = []

    def loop(client: httpx.Client) -> None:
        while True:
            with lock:
                item = next(pending, None)
            if item is None:
                return
            answer = _ask(client, url, item[0], item[1], k)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=loop, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def closed_loop(
    url: str,
    queries: Sequence[tuple[str, str]],
    warmup: Sequence[tuple[str, str]],
    clients: int,
    k: int,
    cpu: Callable[[], float],
) -> Pass:
    """A warm-up pass over `warmup`, then the measured pass over `queries`, both through the same `clients`
    connections (so the same server workers); `cpu()` is read around the measured pass."""
    connections = [httpx.Client(timeout=300.0) for _ in range(clients)]
    try:
        _drive(connections, url, warmup, k)
        cpu_before, start = cpu(), time.perf_counter()
        answers = _drive(connections, url, queries, k)
        return Pass(answers=answers, wall_s=time.perf_counter() - start, cpu_s=cpu() - cpu_before)
    finally:
        for connection in connections:
            connection.close()


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, parents first (from /proc/PID/task/*/children)."""
    tree = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            tree.extend(process_tree(int(child)))
    return tree


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB, from /proc/PID/smaps_rollup."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            values[name] = int(rest.split()[0])
    return values["Rss"], values["Pss"]


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def _wait_ready(
    process: subprocess.Popen, ready_url: str, ready: Callable[[dict], bool], limit_s: float
) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            response = httpx.get(ready_url, timeout=5.0)
            if response.status_code == 200 and ready(response.json()):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{ready_url} not ready within {limit_s:.0f} s")


@contextmanager
def serving(
    argv: Sequence[str],
    ready_url: str,
    ready: Callable[[dict], bool],
    log: Path,
    env: Mapping[str, str] | None = None,
    limit_s: float = 900.0,
) -> Iterator[subprocess.Popen]:
    """Run a server until the block ends: started in its own session with `env` added to this process's
    environment, ready when `ready_url` answers 200 with a body `ready` accepts, stopped with SIGTERM
    (SIGKILL to the processes left after 30 s)."""
    env = {
        **os.environ,
        **(env or {}),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    with log.open("w") as output:
        process = subprocess.Popen(
            argv, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    started = process_tree(process.pid)
    try:
        _wait_ready(process, ready_url, ready, limit_s)
        started = process_tree(process.pid)
        yield process
    except BaseException:
        tail = log.read_text(errors="replace")[-3000:]
        print(f"server {' '.join(argv)} failed; its log ends:\n{tail}", flush=True)
        raise
    finally:
        started = sorted(set(started) | set(process_tree(process.pid)))
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for pid in started:  # workers uvicorn did not take down with it
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)


def workers_seen(answers: Sequence[Answer]) -> str:
    """How the answers spread over the processes that gave them (X-Worker), most first."""
    counts = Counter(a.worker for a in answers if a.worker)
    return " / ".join(str(n) for _, n in counts.most_common())
