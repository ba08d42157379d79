"""The collection registry: concurrent reloads open each new version once.

The two reloads overlap by construction, not by timing: the first one's load of the new version waits
until the second reload has reached the registry's lock (an event set by the lock itself).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.registry import CollectionRegistry


@dataclass
class StubRanker:
    version: str = ""
    path: str | None = None  # no ranker root
    serving: bool = False

    def stale(self) -> bool:
        return False


class StubLive:
    """A version that never has logged writes to apply."""

    def catch_up(self) -> int:
        return 0

    def pending(self) -> bool:
        return False


@dataclass
class StubService:
    """What the registry reads of a `CollectionService`: its version, its ranker's status, its writes,
    close."""

    version: str
    ranker: StubRanker = field(default_factory=StubRanker)
    live: StubLive = field(default_factory=StubLive)

    def close(self) -> None:
        pass


class ObservedLock:
    """A lock that tells (`contended`) when a thread had to wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.contended = threading.Event()

    def __enter__(self) -> ObservedLock:
        if not self._lock.acquire(blocking=False):
            self.contended.set()
            self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_concurrent_reloads_open_a_new_version_once(tmp_path: Path) -> None:
    (tmp_path / "CURRENT").write_text("v1")
    opened: list[str] = []
    lock = ObservedLock()

    def opener(root: Path, name: str, previous: object) -> StubService:
        version = (root / "CURRENT").read_text()
        opened.append(version)
        if previous is not None:  # the first reload's load: hold it until the second reload is waiting
            assert lock.contended.wait(timeout=30), "the second reload never reached the lock"
        return StubService(version)

    registry = CollectionRegistry({"c": tmp_path}, opener=opener, retire_after_s=0.0)  # type: ignore[arg-type]
    registry._reload_lock = lock  # type: ignore[assignment]
    registry.load()
    (tmp_path / "CURRENT").write_text("v2")
    results: list[list] = []
    threads = [threading.Thread(target=lambda: results.append(registry.reload())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert opened == ["v1", "v2"]
    assert sorted(len(switched) for switched in results) == [0, 1]
    assert registry.get("c").version == "v2"
