"""Several worker processes for `searchrec serve --workers N`, forked once the collections have loaded.

The serve command's process is the supervisor (`serve_workers`). It binds the listening socket, loads every
collection once, moves what it loaded out of the garbage collector's reach (`gc.freeze`, so no collection
pass writes to those pages) and forks N workers that accept from the one socket; the kernel hands each
connection to one of them. A worker starts with the supervisor's memory as copy-on-write pages: HNSW
graphs, id maps, vocabularies, the ONNX model, the ranker, Python and its libraries stay one copy in RAM for
all N, and each worker adds only the pages it writes (its requests' objects, its caches). Memory-mapped
arrays were shared anyway through the page cache. A worker that dies is replaced by a fresh fork of the
supervisor, which then catches up with the reloads logged since the supervisor loaded
(`api.reload_broadcast`); the supervisor itself serves nothing and never reloads, so versions loaded by a
reload live in each worker's own memory until the next `serve`.

What must not cross a fork is renewed in the child by the module that owns it (`os.register_at_fork`):
RocksDB handles (`indexer.docstore`), the recall thread pools (`retrieval.pipeline`) and multi-threaded
ONNX sessions (`indexer.encoders.onnx_int8`). Threads that follow reloads and watch roots start in each
worker's lifespan, after the fork. OpenMP (LightGBM, faiss, the E5 encoder) keeps a thread pool that a child
cannot use either, so the supervisor loads with every OpenMP and BLAS pool held to one thread
(threadpoolctl), which starts none, and restores the workers' share before forking.

Before anything loads, the serve command sets what the libraries read when they load (`worker_environment`):
`PROMETHEUS_MULTIPROC_DIR` (the run's metrics folder, so `/metrics` sums every worker, see `api.metrics`)
and the library thread variables (`THREAD_ENV`) at each worker's share of the cores, so N workers do not
oversubscribe them; a variable the user set is left as it is.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from api.body_limit import DEFAULT_MAX_BODY_BYTES
from api.reload_broadcast import ReloadBroadcast
from api.schemas import DEFAULT_MAX_QUERY_CHARS

if TYPE_CHECKING:
    from fastapi import FastAPI

    from retrieval.registry import CollectionRegistry

    AppFactory = Callable[[CollectionRegistry, ReloadBroadcast], FastAPI]  # a worker's app around the two

# Light imports only above: the serve command sets the environment of `worker_environment` before anything
# that reads it (numpy's BLAS, prometheus_client, onnxruntime) is imported.

log = logging.getLogger(__name__)

THREAD_ENV = (
    "OMP_NUM_THREADS",  # OpenMP: faiss, LightGBM, the E5 encoder; the ONNX encoder follows it too
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",  # numpy and scipy's BLAS
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
# prometheus_client reads this when it is imported (api.metrics), so it is named here, not imported from there
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PARENT_CHECK_S = 1.0  # how often a worker checks that its supervisor still lives
RESPAWN_PAUSE_S = 1.0  # before replacing a worker that died within SHORT_LIFE_S of its start
SHORT_LIFE_S = 10.0
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 2


class ServeSettings(BaseModel):
    """What `create_app` needs, as the serve command checked it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    indexes: dict[str, Path]
    rankers: dict[str, Path] = Field(default_factory=dict)
    feature_log: Path | None = None
    watch_interval_s: float | None = None
    max_query_chars: int = Field(default=DEFAULT_MAX_QUERY_CHARS, ge=1)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1)
    threads: int = Field(default=1, ge=1, description="Library threads per worker.")
    query_encoders: dict[str, str] = Field(
        default_factory=dict, description="Collection name -> query encoder setting (others: auto)."
    )
    run_dir: Path | None = Field(default=None, description="The run's folder shared by its workers.")
    ray: RayShards | None = Field(default=None, description="Serve sharded versions' shards on Ray Serve.")


class RayShards(BaseModel):
    """`serve --ray`: where and how sharded versions' shards are deployed (`retrieval.ray_shards`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str | None = Field(default=None, description="A running Ray cluster; None: start a local one.")
    replicas: int = Field(default=1, ge=1, description="Replicas of each shard's deployment.")
    timeout_s: float = Field(default=2.0, gt=0, description="How long a request waits for one shard.")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Library threads for each of `workers` processes: the cores shared out, at least one."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return max(1, (usable_cores() if cores is None else cores) // workers)


@contextmanager
def run_directory() -> Iterator[Path]:
    """A fresh folder for one serve run (metrics, reload broadcast), removed when the run ends."""
    folder = Path(tempfile.mkdtemp(prefix="searchrec-serve-"))
    try:
        (folder / "metrics").mkdir()
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def worker_environment(run_dir: Path, threads: int) -> Iterator[dict[str, str]]:
    """Set what the workers' libraries read when they load (see the module docstring) for the duration of
    the block, then restore the environment as it was; yield the variables set."""
    updates = {MULTIPROC_ENV: str(run_dir / "metrics")}
    updates |= {name: str(threads) for name in THREAD_ENV if name not in os.environ}
    saved = {name: os.environ.get(name) for name in updates}
    os.environ.update(updates)
    try:
        yield updates
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_for_fork(settings: ServeSettings) -> CollectionRegistry:
    """Every collection of `settings`, loaded with each OpenMP and BLAS pool held to one thread (so none
    starts a pool a forked worker would inherit without its threads), then frozen out of the collector's
    reach."""
    from threadpoolctl import threadpool_limits

    from retrieval.registry import CollectionRegistry, service_opener

    limit_malloc_arenas(MALLOC_ARENAS)
    opener = service_opener(settings.rankers or None, settings.feature_log, settings.query_encoders or None)
    registry = CollectionRegistry(settings.indexes, opener=opener)
    with threadpool_limits(limits=1):
        registry.load()
    gc.collect()
    gc.freeze()
    return registry


def limit_malloc_arenas(arenas: int) -> None:
    """Cap glibc's malloc arenas for this process and the workers it forks (`mallopt(M_ARENA_MAX)`; nothing
    elsewhere). By default each thread that allocates may get an arena of its own (up to 8 per core), and a
    version freed after a reload stayed spread over them: in `bench/soak.py` memory kept growing with each
    reload; with two arenas it levels off."""
    with suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)


def serve_workers(
    settings: ServeSettings, app_factory: AppFactory, *, workers: int, host: str, port: int
) -> None:
    """Load once, fork `workers` workers serving `app_factory(registry, broadcast)` on `host:port`, replace
    any that dies, and stop them all on SIGINT or SIGTERM. Needs `settings.run_dir` and the environment of
    `worker_environment` already set."""
    if settings.run_dir is None:
        raise ValueError("workers need a run_dir (see run_directory) for their metrics and reloads")
    listening = listening_socket(host, port)
    try:
        broadcast = ReloadBroadcast(settings.run_dir / "reload")  # the generation the loaded versions are at
        registry = load_for_fork(settings)
    except BaseException:  # e.g. a version that cannot be served: nothing to fork
        listening.close()
        raise
    supervisor = os.getpid()
    started: dict[int, float] = {}
    stopping = False

    def fork_worker() -> None:
        # Signals wait until each side has its own handlers: the supervisor's `stop` must not run in a worker.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            _run_worker(app_factory, registry, broadcast, listening, supervisor)  # never returns
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        started[pid] = time.monotonic()
        log.info("started worker %d", pid)

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in started:
            _signal(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        for _ in range(workers):
            fork_worker()
        log.info("serving on http://%s:%d with %d workers (supervisor %d)", host, port, workers, supervisor)
        while started:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            lived = time.monotonic() - started.pop(pid, time.monotonic())
            if stopping:
                continue
            reason = _exit_reason(status)
            log.warning("worker %d exited (%s) after %.0f s; starting another", pid, reason, lived)
            if lived < SHORT_LIFE_S:
                time.sleep(RESPAWN_PAUSE_S)
            fork_worker()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        listening.close()


def _run_worker(
    app_factory: AppFactory,
    registry: CollectionRegistry,
    broadcast: ReloadBroadcast,
    listening: socket.socket,
    supervisor: int,
) -> None:
    """A forked worker's whole life: serve until told to stop, then leave without running anything the
    supervisor registered to run at exit (its run folder is the supervisor's to remove)."""
    import uvicorn

    code = 1
    try:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)  # uvicorn installs its own while it serves
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        threading.Thread(target=_exit_with, args=(supervisor,), name="supervisor-watch", daemon=True).start()
        app = app_factory(registry, broadcast)
        uvicorn.Server(uvicorn.Config(app, lifespan="on")).run(sockets=[listening])
        code = 0
    except BaseException:
        log.exception("worker %d failed", os.getpid())
    finally:
        logging.shutdown()
        os._exit(code)


def _exit_with(supervisor: int) -> None:
    """Stop this worker gracefully once its supervisor is gone (killed without stopping its workers)."""
    while os.getppid() == supervisor:
        time.sleep(PARENT_CHECK_S)
    os.kill(os.getpid(), signal.SIGTERM)


def listening_socket(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts from (bound before the workers exist). Its protocol is
    IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections of such a socket, and without it a
    keep-alive client waits out the peer's delayed ACK (about 40 ms) on every answer."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    listening = socket.socket(family, kind, proto)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind(address)
    listening.listen(2048)
    listening.set_inheritable(True)
    return listening


def _signal(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, sig)


def _exit_reason(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
