"""The search pipeline: gate and run the recall branches in parallel, merge them, score, truncate.

Every branch is fail-open: one that raises or misses its deadline is left out of that answer and named in
`degraded`, and the request still succeeds with what the other branches found.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from ranker.scoring import FusionScorer, Scorer
from retrieval.candidates import BranchResult, Candidate, CandidateSource, SearchQuery
from retrieval.fusion import get_fusion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    branch_limit: int = 100
    fusion: str = "rrf"
    rrf_k: int = 60
    weights: dict[str, float] = field(default_factory=dict)
    timeout_s: float = 5.0


@dataclass
class SearchOutcome:
    candidates: list[Candidate]
    branches: dict[str, BranchResult]
    degraded: list[str]
    scorer: str
    took_ms: float


class SearchPipeline:
    """Runs the branches of one collection and returns ranked candidates with provenance."""

    def __init__(
        self,
        sources: Sequence[CandidateSource],
        *,
        scorer: Scorer | None = None,
        config: PipelineConfig | None = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.sources = list(sources)
        self.scorer = scorer or FusionScorer()
        self.config = config or PipelineConfig()
        self.executor = executor or ThreadPoolExecutor(
            max_workers=max(2, len(self.sources)), thread_name_prefix="recall"
        )
        self.fuse = get_fusion(self.config.fusion)

    def recall(self, query: SearchQuery, limit: int) -> tuple[dict[str, BranchResult], list[str]]:
        """Run every enabled branch; return what came in time and the names of the branches that did not."""
        running: dict[str, Future[BranchResult]] = {
            source.name: self.executor.submit(source.fetch, query, limit)
            for source in self.sources
            if source.enabled(query)
        }
        done, _ = wait(running.values(), timeout=self.config.timeout_s)
        results, degraded = {}, []
        for name, future in running.items():
            if future not in done:
                log.warning("branch %s missed its %.2fs deadline", name, self.config.timeout_s)
                degraded.append(name)
            elif (error := future.exception()) is not None:
                log.warning("branch %s failed: %r", name, error)
                degraded.append(name)
            else:
                results[name] = future.result()
        return results, degraded

    def merge(self, results: dict[str, BranchResult]) -> list[Candidate]:
        if self.config.fusion == "rrf":
            return self.fuse(list(results.values()), k=self.config.rrf_k, weights=self.config.weights)
        return self.fuse(list(results.values()), weights=self.config.weights)

    def search(self, query: SearchQuery, *, limit: int | None = None) -> SearchOutcome:
        start = time.perf_counter()
        results, degraded = self.recall(query, max(limit or self.config.branch_limit, query.k))
        candidates = self.merge(results)
        if candidates:
            scores = self.scorer.score(query.text, candidates)
            for candidate, score in zip(candidates, scores.tolist(), strict=True):
                candidate.score = score
            order = np.argsort(-np.asarray(scores), kind="stable")
            candidates = [candidates[i] for i in order[: query.k]]
        took_ms = (time.perf_counter() - start) * 1000
        return SearchOutcome(candidates, results, degraded, self.scorer.name, took_ms)
