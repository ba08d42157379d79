"""The pipeline's fail-open policy, gating and truncation, with stand-in branches.

No test here depends on how fast the machine is: a late branch is one held on an event until the test
releases it, far past its own short deadline, and healthy branches get a deadline no scheduling delay nears.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ranker.scoring import Candidate, FusionScorer, RankingContext, Scored
from retrieval.candidates import BranchResult, SearchQuery
from retrieval.pipeline import PipelineConfig, SearchPipeline

GENEROUS_S = 60.0  # the deadline of every branch a test expects to answer
SHORT_S = 0.05  # the deadline of the held branch


class FixedSource:
    inline = False

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


class InlineSource(FixedSource):
    inline = True


class InlineRaising(InlineSource):
    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        raise RuntimeError("index unavailable")


class InlineSlow(InlineSource):
    """Finishes on the request thread, but only after 0.3 s."""

    def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
        threading.Event().wait(0.3)
        return super().fetch(query, limit)


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.submitted: list[str] = []

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        self.submitted.append(args[0].name)
        return super().submit(fn, *args, **kwargs)


def test_inline_branches_run_on_the_request_thread_and_pooled_ones_in_the_pool() -> None:
    threads: dict[str, str] = {}

    class Recording(FixedSource):
        def fetch(self, query: SearchQuery, limit: int) -> BranchResult:
            threads[self.name] = threading.current_thread().name
            return super().fetch(query, limit)

    class RecordingInline(Recording):
        inline = True

    executor = CountingExecutor()
    sources = [RecordingInline("bm25", [1, 2]), Recording("dense", [2, 3]), RecordingInline("w2v", [4])]
    outcome = SearchPipeline(sources, executor=executor).search(SearchQuery("q"))
    assert executor.submitted == ["dense"]
    assert threads["bm25"] == threads["w2v"] == threading.current_thread().name != threads["dense"]
    assert list(outcome.branches) == ["bm25", "dense", "w2v"]  # results keep the branch order
    assert sorted(outcome.branch_ms) == ["bm25", "dense", "w2v"] and outcome.degraded == []
    assert [c.row for c in outcome.candidates] == [2, 1, 3, 4]


def test_a_request_whose_branches_are_all_inline_never_uses_the_pool() -> None:
    executor = CountingExecutor()
    sources = [InlineSource("bm25", [1, 2]), InlineSource("w2v", [2, 3]), HeldSource("dense", [9])]
    outcome = SearchPipeline(sources, executor=executor).search(
        SearchQuery("q", branches=frozenset({"bm25", "w2v"}))
    )
    assert executor.submitted == [] and set(outcome.branches) == {"bm25", "w2v"}
    everything_pooled = SearchPipeline(sources[:2], executor=executor, config=PipelineConfig(inline=False))
    assert everything_pooled.search(SearchQuery("q")).candidates == outcome.candidates
    assert executor.submitted == ["bm25", "w2v"]


def test_an_inline_branch_that_raises_or_is_late_degrades_like_a_pooled_one() -> None:
    sources = [InlineRaising("bm25", [1]), FixedSource("dense", [2, 3]), InlineSlow("w2v", [4])]
    config = PipelineConfig(timeouts={"w2v": 0.05}, timeout_s=5.0)
    outcome = SearchPipeline(sources, config=config).search(SearchQuery("q"))
    # bm25 raised; w2v finished past its own 50 ms deadline, so its result is dropped although it came.
    assert outcome.degraded == ["bm25", "w2v"]
    assert set(outcome.branches) == {"dense"} and [c.row for c in outcome.candidates] == [2, 3]


def test_a_pooled_deadline_counts_from_submission_while_inline_branches_run() -> None:
    held = HeldSource("dense", [9])
    # The inline branch takes 0.3 s, past the pooled branch's 50 ms deadline: once it returns, the request
    # waits no longer for the held branch, and keeps the inline branch's result (its deadline is 5 s).
    config = PipelineConfig(timeouts={"dense": 0.05}, timeout_s=5.0)
    try:
        outcome = SearchPipeline([InlineSlow("bm25", [1, 2]), held], config=config).search(SearchQuery("q"))
        assert not held.finished.is_set()
    finally:
        held.release.set()
    assert outcome.degraded == ["dense"] and [c.row for c in outcome.candidates] == [1, 2]


class ReversingScorer(FusionScorer):
    """Ranks the merged list upside down; with `fallback`, answers in the fusion order and says why."""

    name, version = "reverser", "7"

    def __init__(self, fallback: str | None = None) -> None:
        self.fallback = fallback

    def score_explained(
        self, context: RankingContext, candidates: Sequence[Candidate], *, explain: bool
    ) -> Scored:
        if self.fallback is not None:
            return Scored(super().score(context, candidates), None, self.fallback)
        scores = -super().score(context, candidates)
        return Scored(scores, [{"_score": s} for s in scores.tolist()] if explain else None)


class RaisingScorer(FusionScorer):
    name = "broken"

    def score_explained(
        self, context: RankingContext, candidates: Sequence[Candidate], *, explain: bool
    ) -> Scored:
        raise RuntimeError("model file went missing")


def test_the_scorer_orders_the_answer_unless_it_falls_back_or_fails() -> None:
    sources = [FixedSource("bm25", [1, 2, 3])]
    query = SearchQuery("q", k=2)
    ranked = SearchPipeline(sources, scorer=ReversingScorer()).search(query, explain=True)
    assert [c.row for c in ranked.candidates] == [3, 2]
    assert (ranked.scorer, ranked.scorer_version) == ("reverser", "7")
    assert ranked.features == [{"_score": c.score} for c in ranked.candidates] and ranked.fallback is None
    kept = SearchPipeline(sources, scorer=ReversingScorer("outside its domain")).search(query)
    assert [c.row for c in kept.candidates] == [1, 2] and kept.scorer == "fusion"
    assert kept.fallback == "outside its domain" and kept.degraded == []
    failed = SearchPipeline(sources, scorer=RaisingScorer()).search(query, explain=True)
    assert [c.row for c in failed.candidates] == [1, 2] and failed.scorer == "fusion"
    assert failed.degraded == ["ranker"] and failed.features is None
    assert failed.fallback is not None and "model file went missing" in failed.fallback


def test_filters_hold_for_candidates_of_branches_that_do_not_prefilter() -> None:
    allowed = np.zeros(10, dtype=bool)
    allowed[[2, 3]] = True
    outcome = SearchPipeline([FixedSource("bm25", [1, 2, 3])]).search(SearchQuery("q", allowed=allowed))
    assert [c.row for c in outcome.candidates] == [2, 3]


def test_the_services_cheap_branches_declare_themselves_inline() -> None:
    from retrieval.branches.behaviour import CovisitSource, ItemToItemSource, UserPreferenceSource
    from retrieval.branches.bm25 import Bm25Source
    from retrieval.branches.context import GeoSource, PopularSource
    from retrieval.branches.dense import DenseSource
    from retrieval.branches.word2vec import Word2VecSource

    inline = {Bm25Source, Word2VecSource, PopularSource}
    pooled = {DenseSource, GeoSource, ItemToItemSource, CovisitSource, UserPreferenceSource}
    assert all(source.inline for source in inline)
    assert not any(source.inline for source in pooled)


def test_closing_a_pipeline_ends_its_own_pool_but_not_a_borrowed_one() -> None:
    own = SearchPipeline([])
    own.executor.submit(lambda: None).result()
    own.close()
    with pytest.raises(RuntimeError, match="shutdown"):
        own.executor.submit(lambda: None)
    borrowed = ThreadPoolExecutor(1)
    SearchPipeline([], executor=borrowed).close()
    assert borrowed.submit(lambda: 1).result() == 1
    borrowed.shutdown()
