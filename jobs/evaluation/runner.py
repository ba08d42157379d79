"""Run queries through a served collection's pipeline, in process; collect the merged and per-branch runs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tqdm import tqdm

from retrieval.service import CollectionService

Run = dict[str, list[str]]  # query id -> external ids, best first


@dataclass
class PipelineRuns:
    merged: Run = field(default_factory=dict)
    branches: dict[str, Run] = field(default_factory=dict)
    degraded: Counter[str] = field(default_factory=Counter)
    scores: dict[str, list[float]] = field(default_factory=dict)


def run_queries(
    service: CollectionService, queries: dict[str, str], *, k: int = 100, progress: bool = True
) -> PipelineRuns:
    """The ranking each query gets from the same pipeline the service uses, plus each branch's own ranking."""
    runs = PipelineRuns()
    ids_of = service.collection.external_ids_of
    for query_id, text in tqdm(queries.items(), "queries", disable=not progress, unit="q"):
        outcome = service.run(text, k)
        runs.merged[query_id] = ids_of([c.row for c in outcome.candidates])
        runs.scores[query_id] = [c.score for c in outcome.candidates]
        for name, result in outcome.branches.items():
            runs.branches.setdefault(name, {})[query_id] = ids_of(result.rows[:k])
        runs.degraded.update(outcome.degraded)
    return runs
