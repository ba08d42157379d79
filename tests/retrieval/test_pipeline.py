"""The pipeline's fail-open policy, gating and truncation, with stand-in branches.

No test here depends on how fast the machine is: a late branch is one held on an event until the test
releases it, far past its own short deadline, and healthy branches get a deadline no scheduling delay nears.
"""

from __future__ import annotations

import threading

import numpy as np

from retrieval.candidates import BranchResult, SearchQuery
from retrieval.pipeline import PipelineConfig, SearchPipeline

GENEROUS_S = 60.0  # the deadline of every branch a test expects to answer
SHORT_S = 0.05  # the deadline of the held branch


class FixedSource:
    def __init__(self, name: str, rows: list[int], *, enabled: bool = True) -> None:
        self.name, self.rows, self._enabled = name, rows, enabled

    def enabled(self, query: SearchQuery) -> bool:
        return self._enabled

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        rows = np.array(self.rows[:limit], dtype=np.int64)
        return BranchResult(self.name, rows, np.linspace(1.0, 0.5, len(rows)).astype(np.float32))


class RaisingSource(FixedSource):
    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        raise RuntimeError("index unavailable")


class HeldSource(FixedSource):
    """Holds its thread until released (or 30 s pass); records whether it finished."""

    def __init__(self, name: str, rows: list[int]) -> None:
        super().__init__(name, rows)
        self.release, self.finished = threading.Event(), threading.Event()

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        self.release.wait(timeout=30)
        self.finished.set()
        return super().fetch(query, limit)


def test_raising_and_late_branches_degrade_the_answer() -> None:
    held = HeldSource("w2v", [8])
    sources = [FixedSource("bm25", [4, 5, 6]), RaisingSource("dense", [7]), held]
    config = PipelineConfig(timeout_s=GENEROUS_S, timeouts={"w2v": SHORT_S})
    try:
        outcome = SearchPipeline(sources, config=config).search(SearchQuery("anything", k=10))
    finally:
        held.release.set()
    assert [c.row for c in outcome.candidates] == [4, 5, 6]
    assert sorted(outcome.degraded) == ["dense", "w2v"]
    assert set(outcome.branches) == {"bm25"}


def test_gate_skips_a_branch_and_k_truncates() -> None:
    sources = [FixedSource("bm25", [1, 2, 3]), FixedSource("dense", [9], enabled=False)]
    outcome = SearchPipeline(sources).search(SearchQuery("q", k=2))
    assert [c.row for c in outcome.candidates] == [1, 2]
    assert set(outcome.branches) == {"bm25"}
    assert outcome.degraded == []


def test_every_branch_failing_gives_an_empty_answer_not_an_error() -> None:
    outcome = SearchPipeline([RaisingSource("bm25", [])]).search(SearchQuery("q"))
    assert outcome.candidates == []
    assert outcome.degraded == ["bm25"]


def test_per_branch_quota_and_deadline() -> None:
    held = HeldSource("dense", [9])
    config = PipelineConfig(quotas={"bm25": 2}, timeouts={"dense": SHORT_S}, timeout_s=GENEROUS_S)
    pipeline = SearchPipeline([FixedSource("bm25", [1, 2, 3, 4]), held], config=config)
    try:
        outcome = pipeline.search(SearchQuery("q", k=10))
    finally:
        held.release.set()
    assert len(outcome.branches["bm25"]) == 2  # its quota, not the default depth of 100
    assert outcome.degraded == ["dense"]  # past its own 50 ms deadline, not the default 60 s
    assert [c.row for c in outcome.candidates] == [1, 2]


def test_a_late_branch_costs_its_own_deadline_not_the_longest() -> None:
    held = HeldSource("dense", [9])
    config = PipelineConfig(timeouts={"dense": SHORT_S}, timeout_s=GENEROUS_S)
    try:
        outcome = SearchPipeline([FixedSource("bm25", [1, 2]), held], config=config).search(SearchQuery("q"))
        # The answer came while the held branch was still running: the pipeline stopped waiting for it at
        # its own 50 ms deadline instead of at the 60 s the other branch was allowed.
        assert not held.finished.is_set()
    finally:
        held.release.set()
    assert outcome.degraded == ["dense"] and [c.row for c in outcome.candidates] == [1, 2]
