"""Several worker processes for `searchrec serve --workers N`: one process holds the GIL, N answer at once.

uvicorn's supervisor binds the listening socket, spawns N processes that accept from it, and replaces one
that dies. A spawned worker gets an import string (`WORKER_APP`), not an app object, so the serve command
leaves what the worker needs in its environment, which the workers inherit:

- `SETTINGS_ENV`: the `ServeSettings` as JSON (the admin token stays in its own `SEARCHREC_ADMIN_TOKEN`);
- `PROMETHEUS_MULTIPROC_DIR`: the run's metrics folder, so `/metrics` sums every worker (`api.metrics`);
- the library thread variables (`THREAD_ENV`), so N workers with `threads` each do not oversubscribe the
  cores. They are read when a library loads, so they must be in place before a worker imports numpy or
  torch; a variable the user set is left as it is.

Each worker loads every collection itself. Artifacts are memory-mapped where their format allows, so the
workers share those pages through the page cache (see the README's "Workers and memory").
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from api.reload_broadcast import ReloadBroadcast
from api.schemas import DEFAULT_MAX_QUERY_CHARS

if TYPE_CHECKING:
    from fastapi import FastAPI

# Light imports only above: a worker imports this module before `worker_app` sizes its thread pools.

SETTINGS_ENV = "SEARCHREC_SERVE_SETTINGS"
WORKER_APP = "api.workers:worker_app"
THREAD_ENV = (
    "OMP_NUM_THREADS",  # OpenMP: torch, faiss, LightGBM; torch reads it for its intra-op pool
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",  # numpy and scipy's BLAS
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


class ServeSettings(BaseModel):
    """What `create_app` needs, as the serve command hands it to each worker."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    indexes: dict[str, Path]
    rankers: dict[str, Path] = Field(default_factory=dict)
    feature_log: Path | None = None
    watch_interval_s: float | None = None
    max_query_chars: int = Field(default=DEFAULT_MAX_QUERY_CHARS, ge=1)
    threads: int = Field(default=1, ge=1, description="Library threads per worker.")
    query_encoders: dict[str, str] = Field(
        default_factory=dict, description="Collection name -> query encoder setting (others: auto)."
    )
    run_dir: Path | None = Field(default=None, description="The run's folder shared by its workers.")


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


def create_settings_app(settings: ServeSettings, broadcast: ReloadBroadcast | None = None) -> FastAPI:
    """The app `settings` describe (artifacts load in its lifespan)."""
    from api.app import create_app

    return create_app(
        settings.indexes,
        watch_interval_s=settings.watch_interval_s,
        rankers=settings.rankers or None,
        feature_log=settings.feature_log,
        max_query_chars=settings.max_query_chars,
        broadcast=broadcast,
        query_encoders=settings.query_encoders or None,
    )


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
def worker_environment(settings: ServeSettings) -> Iterator[dict[str, str]]:
    """Set what spawned workers read from the environment (see the module docstring) for the duration of
    the block, then restore the environment as it was; yield the variables set."""
    from api.metrics import MULTIPROC_ENV

    if settings.run_dir is None:
        raise ValueError("workers need a run_dir (see run_directory) for their metrics and reloads")
    updates = {SETTINGS_ENV: settings.model_dump_json(), MULTIPROC_ENV: str(settings.run_dir / "metrics")}
    updates |= {name: str(settings.threads) for name in THREAD_ENV if name not in os.environ}
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


def limit_threads(threads: int) -> None:
    """Size this process's library thread pools to `threads` where the environment does not say otherwise.

    The variables only act on libraries loaded after them; torch, if already loaded, is told directly."""
    for name in THREAD_ENV:
        os.environ.setdefault(name, str(threads))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def worker_app() -> FastAPI:
    """uvicorn's app factory in each worker process: the app from `SETTINGS_ENV`, joined to the run's
    reload broadcast."""
    settings = ServeSettings.model_validate_json(os.environ[SETTINGS_ENV])
    limit_threads(settings.threads)
    logging.basicConfig(level=logging.INFO)
    if settings.run_dir is None:
        raise ValueError(f"{SETTINGS_ENV} names no run_dir")
    return create_settings_app(settings, ReloadBroadcast(settings.run_dir / "reload"))
