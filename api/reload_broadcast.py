"""Hot reload across worker processes: `POST /admin/reload` reaches one worker; this tells all the others.

The workers of one `serve --workers N` share a folder (the serve run's `reload/`) holding:

- ``requests.jsonl``: one line per reload request, ``{"generation": n, "collection": NAME or null}``. The
  line count is the reload generation. Lines are appended under an exclusive `flock`, so two requests at
  once get distinct generations.
- ``workers/<pid>.json``: what each worker last applied, ``{"pid", "generation", "versions", "error"}``,
  replaced atomically.

Each worker follows the request log in a small background thread: a `stat` every `poll_s` seconds, reading
only when the file grew. It reloads the collections named since the generation it last applied (all of them
when one request named none) and records its new state (also when `--watch` switched a version, so the
states `/readyz` lists stay true). The worker that took the admin request appends a
line and waits until every live worker has recorded that generation, so its answer means every worker
serves the new versions. Reloading stays per worker (`CollectionRegistry.reload`): requests in flight
finish on the version they started with, and each answer names the version that produced it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

REQUESTS_FILE = "requests.jsonl"
WORKERS_DIR = "workers"
POLL_S = 0.1
WAIT_S = 120.0


class Reloadable(Protocol):
    """What a worker reloads: `retrieval.registry.CollectionRegistry`."""

    def reload(self, name: str | None = None) -> list: ...

    def items(self) -> list: ...


@dataclass(frozen=True, slots=True)
class WorkerState:
    """A worker's pid, the last reload generation it applied, its collections' versions, and the error of
    that reload, if it failed (the worker then still serves the versions listed)."""

    pid: int
    generation: int
    versions: dict[str, str]
    error: str | None = None


class ReloadIncompleteError(RuntimeError):
    """Some worker failed to apply a reload, or did not apply it before the deadline."""

    def __init__(self, generation: int, lagging: list[WorkerState], failed: list[WorkerState]) -> None:
        parts = [f"worker {s.pid} has not applied it (still serving {s.versions})" for s in lagging]
        parts += [f"worker {s.pid} failed: {s.error} (still serving {s.versions})" for s in failed]
        super().__init__(f"reload {generation} is incomplete: " + "; ".join(parts))
        self.lagging = lagging
        self.failed = failed


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class ReloadBroadcast:
    """One worker's end of the reload broadcast in `directory`.

    Construct it before the registry loads: the generation it starts from is the one current then, so a
    reload requested while the worker loads is applied again afterwards (a no-op when the loaded versions
    are already current) instead of being missed. A worker forked from the process that constructed it and
    loaded the registry (`api.workers`) starts from that generation too, and is known by its own pid
    unless `worker_id` was given.
    """

    def __init__(
        self,
        directory: Path,
        *,
        worker_id: int | None = None,
        poll_s: float = POLL_S,
        wait_s: float = WAIT_S,
        alive: Callable[[int], bool] = pid_alive,
    ) -> None:
        self.directory = Path(directory)
        self._worker_id = worker_id
        self._requests = self.directory / REQUESTS_FILE
        self._states = self.directory / WORKERS_DIR
        self._states.mkdir(parents=True, exist_ok=True)
        self._requests.touch()
        self._poll_s, self._wait_s, self._alive = poll_s, wait_s, alive
        logged = self._requests.read_bytes()
        self._offset = logged.rfind(b"\n") + 1  # a line being appended now is read with the next ones
        self._generation = logged[: self._offset].count(b"\n")
        self._registry: Reloadable | None = None
        self._recorded = WorkerState(self.worker_id, self._generation, {})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def worker_id(self) -> int:
        return os.getpid() if self._worker_id is None else self._worker_id

    # ----------------------------------------------------------------------------- the worker's side
    def start(self, registry: Reloadable, *, follow: bool = True) -> None:
        """Record this worker's loaded versions, then follow the request log in a background thread (with
        `follow` false, the caller applies requests with `catch_up`)."""
        self._registry = registry
        self._record(None)
        if follow:
            self._thread = threading.Thread(target=self._follow, name="reload-broadcast", daemon=True)
            self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self._poll_s):
            if not self.catch_up():
                self.refresh()

    def catch_up(self) -> bool:
        """Apply the reload requests logged since the last one applied; whether there were any."""
        if self._registry is None:
            return False
        requested = self._read_new()
        if not requested:
            return False
        error = None
        try:
            for name in [None] if None in requested else list(dict.fromkeys(requested)):
                self._registry.reload(name)
        except Exception as failure:  # a broken new version must not stop the old one from serving
            if getattr(failure, "failures", None) is None:  # a refusal (ReloadFailedError) is logged already
                log.exception("reload failed; still serving the previous versions")
            error = f"{type(failure).__name__}: {failure}"
        self._generation += len(requested)
        self._record(error)
        return True

    def refresh(self) -> bool:
        """Record the versions served now if a switch the broadcast did not make (`--watch`) changed them;
        whether it did."""
        if self._registry is None or self._versions() == self._recorded.versions:
            return False
        self._record(self._recorded.error)
        return True

    def _read_new(self) -> list[str | None]:
        """Collections named by the complete lines appended since the last read (None: every one)."""
        size = self._requests.stat().st_size
        if size <= self._offset:
            return []
        with self._requests.open("rb") as lines:
            lines.seek(self._offset)
            data = lines.read(size - self._offset)
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        return [json.loads(line)["collection"] for line in complete.splitlines()]

    def _versions(self) -> dict[str, str]:
        return {name: service.version for name, service in self._registry.items()} if self._registry else {}

    def _record(self, error: str | None) -> None:
        state = WorkerState(self.worker_id, self._generation, self._versions(), error)
        self._recorded = state
        path = self._states / f"{self.worker_id}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(state)), encoding="utf-8")
        os.replace(temporary, path)

    def stop(self) -> None:
        """Stop following and withdraw this worker's state, so no reload waits for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        (self._states / f"{self.worker_id}.json").unlink(missing_ok=True)

    # ----------------------------------------------------------------- the admin request's side
    def announce(self, collection: str | None) -> int:
        """Log a reload request for `collection` (None: every collection); return its generation."""
        with self._requests.open("ab") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            try:
                generation = self._requests.read_bytes().count(b"\n") + 1
                out.write(json.dumps({"generation": generation, "collection": collection}).encode() + b"\n")
                out.flush()
            finally:
                fcntl.flock(out, fcntl.LOCK_UN)
        return generation

    def workers(self) -> list[WorkerState]:
        """The state of every live worker that has finished loading, by pid."""
        states = []
        for path in sorted(self._states.glob("*.json")):
            try:
                state = WorkerState(**json.loads(path.read_text(encoding="utf-8")))
            except FileNotFoundError:  # withdrawn while listing
                continue
            if self._alive(state.pid):
                states.append(state)
        return states

    def wait(self, generation: int) -> list[WorkerState]:
        """Every live worker's state once all have applied `generation`; ReloadIncompleteError when one
        failed to, or has not within `wait_s` seconds."""
        deadline = time.monotonic() + self._wait_s
        while True:
            states = self.workers()
            lagging = [s for s in states if s.generation < generation]
            if not lagging or time.monotonic() >= deadline:
                failed = [s for s in states if s.generation >= generation and s.error is not None]
                if lagging or failed:
                    raise ReloadIncompleteError(generation, lagging, failed)
                return states
            time.sleep(self._poll_s)
