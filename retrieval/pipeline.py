"""The search pipeline: gate and run the recall branches, merge them, filter, score, keep the best.

`SearchPipeline.search` runs the steps in order, each a named method or function: `recall` (the selected
branches), `merge` (the configured fusion, its parameters bound once: `PipelineConfig.fusion_call`),
`admitted` (the request's filters, for branches that cannot pre-filter), `rank` (the scorer, or the fusion
order when it falls back or fails) and `best` (scores written, ordered, cut to `k`).

Every branch is fail-open: one that raises or misses its deadline is left out of that answer and named in
`degraded`, and the request still succeeds with what the other branches found. The scorer is fail-open too:
when a learned ranker raises, the answer keeps the fusion order and names `ranker` in `degraded`.

Where branches run. Every branch says whether it is `inline`. One that is (cheap, bounded by design,
reading no file and taking no lock, and holding the GIL for most of its time, so a thread of its own would
buy no parallelism: BM25 over at most `indexer.fields.MAX_QUERY_TERMS` posting lists, Word2Vec,
popularity) runs on the request thread. The others (the dense branch, whose model releases the GIL while it
computes; geo, which reads the docstore; the behaviour branches) run in the thread pool. The pooled
branches are submitted first, so they run while the inline ones do, and their deadlines count from the
submission. A request whose branches are all inline never touches the pool: no hand-off between threads.
`PipelineConfig(inline=False)` puts every branch in the pool. A pool's threads do not cross a `fork`: a
process forked from one holding pipelines (`serve --workers`) gives each pipeline a fresh pool of its own.

Deadlines. A pooled branch is waited for until its own deadline at most, then left running and named in
`degraded`. An inline branch cannot be abandoned half-way: its deadline is checked when it returns, and a
result that came later than the deadline is dropped and the branch named in `degraded`, exactly as for a
pooled branch that finished late; the request has waited for it, though, which is why only branches whose
cost is bounded by their design run inline, never one that may block on I/O, a lock or a model.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ranker.scoring import Candidate, FusionScorer, RankingContext, Scored, Scorer
from retrieval.candidates import BranchResult, CandidateSource, SearchQuery
from retrieval.fusion import get_fusion
from retrieval.segments import unavailable_segments

log = logging.getLogger(__name__)


Fuse = Callable[[Sequence[BranchResult]], list[Candidate]]
"""A fusion with its parameters bound: the branches' results in, merged candidates out, best first."""


@dataclass(frozen=True)
class PipelineConfig:
    branch_limit: int = 100
    fusion: str = "rrf"
    rrf_k: int = 60
    # A request with a location states location intent: the geo branch (good text matches ordered by
    # distance, or the nearest items) leads the order, and the other branches break its ties and rank the
    # rest. RRF at k = 60 cannot express that: ranks 1 and 3 differ by only 3% there.
    branch_k: dict[str, int] = field(default_factory=lambda: {"geo": 1})
    # Fusion weights (a branch not named weighs 1):
    # - w2v 0: a recall-only branch. On SciFact *train*, adding it to RRF lowers nDCG@10 (0.7166 at
    #   weight 0, 0.7082 at 0.5, 0.6948 at 1) while raising recall@100 (0.9516 -> 0.9611): its candidates
    #   join the merged set for the ranker to score, but do not move the fusion order.
    # - item2item, user_pref, popular 0.1: supporting behaviour branches. Validated on MovieLens with each
    #   user's second-to-last event held out (the last removed): co-visitation alone gives NDCG@10 0.0515,
    #   equal-weight RRF of all four 0.0284, these weights 0.0505 with the best HR@10 (0.102 vs 0.093).
    weights: dict[str, float] = field(
        default_factory=lambda: {"w2v": 0.0, "item2item": 0.1, "user_pref": 0.1, "popular": 0.1}
    )
    timeout_s: float = 5.0
    # Per-branch overrides of the depth (quota) and of the deadline; a branch not named uses the defaults.
    quotas: dict[str, int] = field(default_factory=dict)
    timeouts: dict[str, float] = field(default_factory=dict)
    # Run the branches that declare themselves `inline` on the request thread (see the module docstring).
    inline: bool = True

    def quota(self, branch: str, limit: int) -> int:
        return self.quotas.get(branch, limit)

    def deadline(self, branch: str) -> float:
        return self.timeouts.get(branch, self.timeout_s)

    def fusion_call(self) -> Fuse:
        """The configured fusion with its parameters bound (RRF: k, per-branch k and weights; weighted:
        weights); ValueError for an unknown fusion."""
        fuse = get_fusion(self.fusion)
        if self.fusion == "rrf":
            return partial(fuse, k=self.rrf_k, weights=self.weights, branch_k=self.branch_k)
        return partial(fuse, weights=self.weights)


@dataclass
class SearchOutcome:
    candidates: list[Candidate]
    branches: dict[str, BranchResult]
    degraded: list[str]
    scorer: str
    took_ms: float
    branch_ms: dict[str, float] = field(default_factory=dict)
    scorer_version: str = ""
    features: list[dict[str, float]] | None = None  # with explain and a learned ranker: per candidate
    fallback: str | None = None  # why a learned ranker left this request in the fusion order


def _wait_each(running: dict[str, Future], deadlines: dict[str, float], start: float) -> set[str]:
    """Wait until every branch is done or past its own deadline, counted from `start` (a perf_counter
    reading: when the branches were submitted); return the names of those left running.

    The request never waits for a branch beyond that branch's deadline, so one slow branch with a short
    deadline costs its deadline, not the longest deadline of the others.
    """
    pending, late = dict(running), set()
    while pending:
        elapsed = time.perf_counter() - start
        for name in [n for n, f in pending.items() if f.done()]:
            del pending[name]
        for name in [n for n in pending if deadlines[n] <= elapsed]:
            late.add(name)
            del pending[name]
        if pending:
            next_deadline = min(deadlines[n] for n in pending)
            wait(pending.values(), timeout=next_deadline - elapsed, return_when=FIRST_COMPLETED)
    return late


def admitted(query: SearchQuery, candidates: list[Candidate]) -> list[Candidate]:
    """The candidates the request's filters allow. Branches that cannot pre-filter are filtered here, so a
    filter holds whatever found the item."""
    return [c for c in candidates if query.admits(c.row)]


def best(
    candidates: list[Candidate], scored: Scored, k: int
) -> tuple[list[Candidate], list[dict[str, float]] | None]:
    """Each candidate's score written onto it, then the `k` highest with their explained values (None
    when the scorer explained none); equal scores keep the merged order."""
    for candidate, score in zip(candidates, scored.scores.tolist(), strict=True):
        candidate.score = score
    order = np.argsort(-scored.scores, kind="stable")[:k]
    features = None if scored.features is None else [scored.features[i] for i in order]
    return [candidates[i] for i in order], features


def _timed(
    source: CandidateSource, query: SearchQuery, limit: int, context: contextvars.Context | None = None
) -> tuple[BranchResult, float]:
    """`source`'s result and its latency in ms; in `context` (the request's, copied) when it runs in the
    pool, so what it notes of unavailable segments reaches the request (`retrieval.segments`)."""
    if context is not None:
        return context.run(_timed, source, query, limit)
    start = time.perf_counter()
    result = source.fetch(query, limit)
    return result, (time.perf_counter() - start) * 1000


def _run_inline(source: CandidateSource, query: SearchQuery, limit: int) -> Future:
    """`source` run here and now, its outcome (result or exception) in a completed future."""
    future: Future[tuple[BranchResult, float]] = Future()
    try:
        future.set_result(_timed(source, query, limit))
    except Exception as error:  # the branch fails open, as in the pool
        future.set_exception(error)
    return future


_OWN_POOLS: weakref.WeakSet[SearchPipeline] = weakref.WeakSet()  # pipelines that made their own pool


def _fresh_pools_after_fork() -> None:
    for pipeline in list(_OWN_POOLS):
        pipeline.executor = pipeline._new_pool()


os.register_at_fork(after_in_child=_fresh_pools_after_fork)


# (candidate rows, query text) -> a block whose per-row reads of those rows are fetched in one batch
BatchedReads = Callable[[np.ndarray, str], AbstractContextManager[None]]


class SearchPipeline:
    """Runs the branches of one collection and returns ranked candidates with provenance."""

    def __init__(
        self,
        sources: Sequence[CandidateSource],
        *,
        scorer: Scorer | None = None,
        config: PipelineConfig | None = None,
        executor: ThreadPoolExecutor | None = None,
        pool_of: SearchPipeline | None = None,
        batched_reads: BatchedReads | None = None,
    ) -> None:
        """`executor`: a pool to use (its owner shuts it down); `pool_of`: a pipeline whose pool to use,
        whichever it is when a request comes (a forked worker renews it); else a pool of its own.
        `batched_reads` (`retrieval.collection.Collection.batched_reads`): the block a learned scorer
        ranks in, so its per-row reads come in one fetch per shard served elsewhere."""
        self.sources = list(sources)
        self.batched_reads = batched_reads
        self.scorer = scorer or FusionScorer()
        self.config = config or PipelineConfig()
        self._pool_of = pool_of
        self._executor = executor or (None if pool_of is not None else self._new_pool())
        if executor is None and pool_of is None:
            _OWN_POOLS.add(self)
        self.fuse = self.config.fusion_call()

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._pool_of is not None:
            return self._pool_of.executor
        assert self._executor is not None
        return self._executor

    @executor.setter
    def executor(self, pool: ThreadPoolExecutor) -> None:
        self._executor = pool

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=8 * max(1, len(self.sources)), thread_name_prefix="recall")

    def close(self) -> None:
        """Let the pool's threads end once their branches return (a pool passed in stays its owner's)."""
        if self in _OWN_POOLS:
            _OWN_POOLS.discard(self)
            self.executor.shutdown(wait=False)

    def selected(self, query: SearchQuery) -> list[CandidateSource]:
        """The branches this request runs: those asked for (all by default) whose gate opens."""
        return [
            source
            for source in self.sources
            if (query.branches is None or source.name in query.branches) and source.enabled(query)
        ]

    def runs_inline(self, source: CandidateSource) -> bool:
        """Whether `source` runs on the request thread (see the module docstring)."""
        return self.config.inline and source.inline

    def recall(
        self, query: SearchQuery, limit: int
    ) -> tuple[dict[str, BranchResult], list[str], dict[str, float]]:
        """Run the selected branches (pooled ones in parallel, inline ones meanwhile on this thread); return
        what came in time, the names of those that did not, and each finished branch's latency in
        milliseconds, in branch order."""
        sources = self.selected(query)
        start = time.perf_counter()
        running: dict[str, Future[tuple[BranchResult, float]]] = {
            source.name: self.executor.submit(
                _timed, source, query, self.config.quota(source.name, limit), contextvars.copy_context()
            )
            for source in sources
            if not self.runs_inline(source)
        }
        for source in sources:
            if self.runs_inline(source):
                running[source.name] = _run_inline(source, query, self.config.quota(source.name, limit))
        deadlines = {name: self.config.deadline(name) for name in running}
        late = _wait_each(running, deadlines, start)
        results, degraded, latency = {}, [], {}
        for name in [s.name for s in sources]:
            future = running[name]
            if name in late:
                log.warning("branch %s missed its %.2fs deadline", name, deadlines[name])
                degraded.append(name)
            elif (error := future.exception()) is not None:
                log.warning("branch %s failed: %r", name, error)
                degraded.append(name)
            else:
                result, took_ms = future.result()
                if took_ms > deadlines[name] * 1000:  # done by the time it was looked at, but late
                    log.warning(
                        "branch %s took %.0f ms, past its %.2fs deadline", name, took_ms, deadlines[name]
                    )
                    degraded.append(name)
                else:
                    results[name], latency[name] = result, took_ms
        return results, degraded, latency

    def merge(self, results: dict[str, BranchResult]) -> list[Candidate]:
        """The branches' results fused into one list, best first, with provenance."""
        return self.fuse(list(results.values()))

    def rank(
        self, query: SearchQuery, candidates: list[Candidate], *, explain: bool
    ) -> tuple[Scorer, Scored, bool]:
        """What ordered the candidates, its answer, and whether the pipeline's scorer raised. The scorer
        answers unless it fell back to the fusion order (`Scored.fallback` says why) or raised (logged,
        and said in `fallback`): then fusion ordered them."""
        context = RankingContext.of(query)
        try:
            scored = self.scorer.score_explained(context, candidates, explain=explain)
        except Exception as error:  # a broken ranker must not fail the request: keep the fusion order
            log.warning("scorer %s failed, keeping the fusion order: %r", self.scorer.name, error)
            fused = _FUSION.score_explained(context, candidates, explain=False)
            return _FUSION, Scored(fused.scores, None, f"the ranker failed: {error!r}"), True
        return (self.scorer if scored.fallback is None else _FUSION), scored, False

    def _reads(self, query: SearchQuery, candidates: list[Candidate]) -> AbstractContextManager[None]:
        """Where the scorer reads the candidates' rows: in one batch when a learned scorer will read them
        (none when the batch cannot be started: the reads then go one by one, as without it)."""
        if self.batched_reads is None or isinstance(self.scorer, FusionScorer):
            return nullcontext()
        if not self.scorer.applies(RankingContext.of(query), candidates):
            return nullcontext()
        rows = np.fromiter((c.row for c in candidates), dtype=np.int64)
        try:
            return self.batched_reads(rows, query.text)
        except Exception as error:  # the batch is an optimisation: never a reason to fail the request
            log.warning("batched reads failed, reading rows one by one: %r", error)
            return nullcontext()

    def search(
        self,
        query: SearchQuery,
        *,
        limit: int | None = None,
        explain: bool = False,
        keep_reads: ExitStack | None = None,
    ) -> SearchOutcome:
        """Recall, merge, filter, rank and keep the best `query.k`; with `explain`, also each kept
        candidate's ranking features (computed over the whole merged list, as the scorer saw it). The
        candidates' batched reads (`batched_reads`) last until `keep_reads` closes when one is given (the
        caller then reads the answer's records from them), else until the search returns."""
        start = time.perf_counter()
        with unavailable_segments() as unavailable, ExitStack() as own_reads:
            results, degraded, latency = self.recall(query, max(limit or self.config.branch_limit, query.k))
            candidates = admitted(query, self.merge(results))
            scorer, features, fallback = self.scorer, None, None
            if candidates:
                (keep_reads or own_reads).enter_context(self._reads(query, candidates))
                scorer, scored, failed = self.rank(query, candidates, explain=explain)
                if failed:
                    degraded.append("ranker")
                candidates, features = best(candidates, scored, query.k)
                fallback = scored.fallback
        degraded += sorted(unavailable)
        took_ms = (time.perf_counter() - start) * 1000
        return SearchOutcome(
            candidates, results, degraded, scorer.name, took_ms, latency, scorer.version, features, fallback
        )


_FUSION = FusionScorer()
