"""The reload broadcast between worker processes, with stand-in registries: which collections each worker
reloads, what the admin request waits for, and what it reports when a worker fails or lags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from api.reload_broadcast import ReloadBroadcast, ReloadIncompleteError


@dataclass(frozen=True)
class Served:
    """What the broadcast reads of a served collection: its version."""

    version: str


class StandInRegistry:
    """Serves `versions`; `reload` switches to `published` and records what it was asked."""

    def __init__(self, **versions: str) -> None:
        self.versions = dict(versions)
        self.published = dict(versions)
        self.asked: list[str | None] = []
        self.failure: Exception | None = None

    def reload(self, name: str | None = None) -> list:
        self.asked.append(name)
        if self.failure is not None:
            raise self.failure
        for each in [name] if name is not None else list(self.versions):
            self.versions[each] = self.published[each]
        return []

    def items(self) -> list:
        return [(name, Served(v)) for name, v in self.versions.items()]

    def publish(self, **versions: str) -> None:
        self.published.update(versions)


def _worker(
    folder: Path, pid: int, registry: StandInRegistry, *, alive: set[int] | None = None, wait_s: float = 60.0
) -> ReloadBroadcast:
    broadcast = ReloadBroadcast(
        folder, worker_id=pid, wait_s=wait_s, alive=lambda p: alive is None or p in alive
    )
    broadcast.start(registry, follow=False)
    return broadcast


def test_a_reload_announced_by_one_worker_switches_the_other(tmp_path: Path) -> None:
    one, two = StandInRegistry(a="v1"), StandInRegistry(a="v1")
    first, second = _worker(tmp_path, 1, one), _worker(tmp_path, 2, two)
    one.publish(a="v2")
    two.publish(a="v2")
    one.reload()  # what the admin route does in the worker that took the request
    generation = first.announce(None)
    assert generation == 1
    assert [first.catch_up(), second.catch_up()] == [True, True]
    states = first.wait(generation)
    assert [(s.pid, s.generation, s.versions, s.error) for s in states] == [
        (1, 1, {"a": "v2"}, None),
        (2, 1, {"a": "v2"}, None),
    ]
    assert second.catch_up() is False  # nothing new: no reload


def test_a_worker_that_missed_requests_reloads_what_they_named_once(tmp_path: Path) -> None:
    registry = StandInRegistry(a="v1", b="v1")
    worker, other = _worker(tmp_path, 1, registry), _worker(tmp_path, 2, StandInRegistry(a="v1", b="v1"))
    assert [other.announce("a"), other.announce("b"), other.announce("a")] == [1, 2, 3]
    worker.catch_up()
    assert registry.asked == ["a", "b"]
    other.announce("a")
    other.announce(None)  # every collection
    worker.catch_up()
    assert registry.asked == ["a", "b", None]
    assert worker.workers()[0].generation == 5


def test_a_failed_reload_is_reported_with_the_versions_still_served(tmp_path: Path) -> None:
    healthy, broken = StandInRegistry(a="v1"), StandInRegistry(a="v1")
    first, second = _worker(tmp_path, 1, healthy), _worker(tmp_path, 2, broken)
    broken.failure = ValueError("checksum mismatch in v2")
    generation = first.announce(None)
    first.catch_up()
    second.catch_up()
    with pytest.raises(
        ReloadIncompleteError, match=r"worker 2 failed: ValueError: checksum mismatch"
    ) as error:
        first.wait(generation)
    assert "still serving {'a': 'v1'}" in str(error.value)


def test_a_worker_that_has_not_reloaded_by_the_deadline_is_named(tmp_path: Path) -> None:
    first = _worker(tmp_path, 1, StandInRegistry(a="v1"), wait_s=0.0)
    _worker(tmp_path, 2, StandInRegistry(a="v1"))
    generation = first.announce(None)
    first.catch_up()
    with pytest.raises(ReloadIncompleteError, match="worker 2 has not applied it") as error:
        first.wait(generation)
    assert [s.pid for s in error.value.lagging] == [2]


def test_dead_and_stopped_workers_are_not_waited_for(tmp_path: Path) -> None:
    first = _worker(tmp_path, 1, StandInRegistry(a="v1"), alive={1, 3}, wait_s=0.0)
    _worker(tmp_path, 2, StandInRegistry(a="v1"))  # died without withdrawing its state
    third = _worker(tmp_path, 3, StandInRegistry(a="v1"))
    assert [s.pid for s in first.workers()] == [1, 3]
    third.stop()
    generation = first.announce(None)
    first.catch_up()
    assert [s.pid for s in first.wait(generation)] == [1]


def test_a_worker_loading_during_a_reload_applies_it_after_loading(tmp_path: Path) -> None:
    announcer = _worker(tmp_path, 1, StandInRegistry(a="v1"))
    loading = ReloadBroadcast(tmp_path, worker_id=2)  # constructed before its registry loads
    announcer.announce(None)
    registry = StandInRegistry(a="v2")
    loading.start(registry, follow=False)
    assert loading.workers()[1].generation == 0
    assert loading.catch_up() is True
    assert registry.asked == [None] and loading.workers()[1].generation == 1
    late = ReloadBroadcast(tmp_path, worker_id=3)  # constructed after: starts at the current generation
    late.start(StandInRegistry(a="v2"), follow=False)
    assert late.catch_up() is False and late.workers()[2].generation == 1


def test_the_background_thread_applies_requests(tmp_path: Path) -> None:
    registry = StandInRegistry(a="v1")
    follower = ReloadBroadcast(tmp_path, worker_id=2, alive=lambda _: True)
    follower.start(registry)
    try:
        registry.publish(a="v2")
        announcer = ReloadBroadcast(tmp_path, worker_id=1, alive=lambda _: True)
        states = announcer.wait(announcer.announce(None))  # returns once the thread has applied it
        assert [(s.pid, s.versions) for s in states] == [(2, {"a": "v2"})]
    finally:
        follower.stop()
    assert announcer.workers() == []


def test_the_recorded_versions_follow_a_switch_the_broadcast_did_not_make(tmp_path: Path) -> None:
    registry = StandInRegistry(a="v1")
    worker = _worker(tmp_path, 1, registry)
    assert worker.refresh() is False
    registry.versions["a"] = "v2"  # what serve --watch does in this worker
    assert worker.refresh() is True
    assert [(s.pid, s.versions, s.generation) for s in worker.workers()] == [(1, {"a": "v2"}, 0)]
