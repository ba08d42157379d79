"""Training a ranker: ranked lists with labels in, the better of LambdaMART and the list-wise MLP out.

The input is generic: a list of `RankingExample` (a context, its candidates, their labels and the ideal
gains of the context's judgments). Search training builds them from the recall pipeline's candidates and
qrels (`search_example`); next-item recommendation can build them from a behaviour log's held-out events
the same way. Features come from the same `FeatureExtractor` the serving scorer uses. Training lists can
be run with a branch left out (`dropout_keys`), so the model also learns requests some branch missed.

`CandidateRecorder` is the scorer the training job puts into the pipeline: it scores like fusion and keeps
each request's full merged candidate list, exactly what a serving scorer is given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from ranker.features.extract import FeatureExtractor
from ranker.metrics import Judged
from ranker.models import MODELS, SELECTION_METRIC, Groups, LambdaMart, RankingModel, mean_ndcg, model_class
from ranker.scoring import Candidate, FusionScorer, RankingContext, branches_found

MODEL_KINDS = tuple(MODELS)


@dataclass
class RankingExample:
    key: str  # query id (or context id)
    context: RankingContext
    candidates: Sequence[Candidate]
    labels: np.ndarray  # grade per candidate, 0 when unjudged
    ideal: np.ndarray  # positive grades of every judged item of `key`, highest first


class CandidateRecorder(FusionScorer):
    """A fusion scorer that remembers the last request it scored (per thread)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def score(self, context: RankingContext, candidates: Sequence[Candidate]) -> np.ndarray:
        self._local.last = (context, list(candidates))
        return super().score(context, candidates)

    def take(self) -> tuple[RankingContext | None, list[Candidate]]:
        """The last request's context and candidates (None and [] when nothing was scored), then forget it."""
        last: tuple[RankingContext | None, list[Candidate]] = getattr(self._local, "last", (None, []))
        self._local.last = (None, [])
        return last


def search_example(
    key: str,
    context: RankingContext,
    candidates: Sequence[Candidate],
    ids: Sequence[str],
    judgments: Mapping[str, int],
) -> RankingExample:
    """Label candidates with their qrels grade (0 when unjudged)."""
    labels = np.array([max(int(judgments.get(i, 0)), 0) for i in ids], dtype=np.int64)
    return RankingExample(key, context, list(candidates), labels, Judged.from_qrels(judgments).ideal_gains)


Runner = Callable[[str, frozenset[str] | None], tuple[RankingContext | None, Sequence[Candidate]]]
"""Runs one query through the recall pipeline (only the given branches; None: all) and returns the
context and merged candidates its scorer was given."""


def collect_search_examples(
    run: Runner,
    ids_of: Callable[[Sequence[Candidate]], list[str]],
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    keys: Iterable[str] | None = None,
    dropout: Iterable[str] = (),
    progress: bool = True,
) -> list[RankingExample]:
    """One example per judged query (of `keys`, default all); the queries in `dropout` are also run once per
    branch that found something, with that branch left out (when at least two branches found something).

    A query whose recall found nothing still yields an (empty) example, so it counts as 0 in nDCG. A
    variant's key is the query id, "~" and the branches it ran.
    """
    examples, dropped = [], set(dropout)
    judged = [qid for qid in (qrels if keys is None else keys) if qid in queries and qid in qrels]
    for qid in tqdm(judged, "queries", disable=not progress, unit="q"):
        context, candidates = run(queries[qid], None)
        examples.append(_example(qid, queries[qid], context, candidates, ids_of, qrels[qid]))
        present = sorted(branches_found(candidates))
        if qid not in dropped or len(present) < 2:
            continue
        for left_out in present:
            only = frozenset(present) - {left_out}
            context, candidates = run(queries[qid], only)
            key = f"{qid}~{'+'.join(sorted(only))}"
            examples.append(_example(key, queries[qid], context, candidates, ids_of, qrels[qid]))
    return examples


def _example(
    key: str,
    text: str,
    context: RankingContext | None,
    candidates: Sequence[Candidate],
    ids_of: Callable[[Sequence[Candidate]], list[str]],
    judgments: Mapping[str, int],
) -> RankingExample:
    return search_example(
        key, context or RankingContext(text=text), candidates, ids_of(candidates), judgments
    )


def collect_recommend_examples(
    run: Callable[[str], tuple[RankingContext | None, Sequence[Candidate]]],
    ids_of: Callable[[Sequence[Candidate]], list[str]],
    held_out: Mapping[str, Sequence[str]],
    *,
    keys: Iterable[str] | None = None,
    progress: bool = True,
) -> list[RankingExample]:
    """One example per user (of `keys`, default all of `held_out`): the candidates `run(user)` recommends,
    labelled 1 where the candidate is one of the user's held-out items."""
    examples = []
    users = [u for u in (held_out if keys is None else keys) if u in held_out]
    for user in tqdm(users, "users", disable=not progress, unit="user"):
        context, candidates = run(user)
        judgments = dict.fromkeys(held_out[user], 1)
        context = context or RankingContext(text="", user_id=user)
        examples.append(search_example(user, context, candidates, ids_of(candidates), judgments))
    return examples


def dropout_keys(keys: Iterable[str], fraction: float, seed: int) -> list[str]:
    """Branch dropout: a seeded `fraction` of `keys` to run again with each branch left out in turn.

    A served request can lack a branch (its gate, a failure, a missed deadline); training on such variants
    teaches the model to rank without it instead of reading a missing branch as a bad candidate.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"branch dropout fraction must be within [0, 1], got {fraction}")
    rng = np.random.default_rng(seed + 1)
    return [k for k in sorted(keys) if rng.random() < fraction]


def truncated(examples: Sequence[RankingExample], limit: int | None) -> list[RankingExample]:
    """Each example with only its first `limit` candidates (the fusion order's best); None keeps all."""
    if limit is None:
        return list(examples)
    return [
        RankingExample(e.key, e.context, list(e.candidates[:limit]), e.labels[:limit], e.ideal)
        for e in examples
    ]


# Candidate limits and LightGBM sizes tried when choosing what the served ranker scores (best fused first).
CANDIDATE_LIMITS: tuple[int | None, ...] = (50, 100, None)
SMALL_TREES = {"num_leaves": 31}
# A cheaper setting is kept when its validation nDCG@10 is within this of the best one's.
CHEAPER_TOLERANCE = 0.005


@dataclass
class BoundChoice:
    """What the served ranker scores: at most `limit` candidates (None: all), with LightGBM `options`."""

    limit: int | None
    options: dict[str, Any]
    tried: dict[str, float]  # "limit=N leaves=L" -> validation nDCG@10 of LambdaMART


def choose_bounds(
    extractor: FeatureExtractor,
    train_examples: Sequence[RankingExample],
    valid_examples: Sequence[RankingExample],
    *,
    seed: int,
    limits: Sequence[int | None] = CANDIDATE_LIMITS,
) -> BoundChoice:
    """The smallest candidate limit, then the smaller trees, whose LambdaMART validation nDCG@10 stays within
    `CHEAPER_TOLERANCE` of the best tried: ranking cost bounded on the validation split, never the test's."""
    tried: dict[str, float] = {}

    def valid_ndcg(limit: int | None, params: dict[str, Any]) -> float:
        train = featurize(extractor, truncated(train_examples, limit))
        valid = featurize(extractor, truncated(valid_examples, limit))
        model = LambdaMart(params)
        score = float(model.fit(train, valid, seed=seed)[SELECTION_METRIC])
        tried[f"limit={limit or 'all'} leaves={model.params['num_leaves']}"] = score
        return score

    by_limit = {limit: valid_ndcg(limit, {}) for limit in limits}
    best = max(by_limit.values())
    limit = next(n for n in limits if by_limit[n] >= best - CHEAPER_TOLERANCE)
    small = valid_ndcg(limit, SMALL_TREES)
    options = dict(SMALL_TREES) if small >= best - CHEAPER_TOLERANCE else {}
    return BoundChoice(limit, options, tried)


def featurize(extractor: FeatureExtractor, examples: Sequence[RankingExample]) -> Groups:
    matrices = [extractor.extract(e.context, e.candidates) for e in examples]
    return Groups.stack(
        [e.key for e in examples], matrices, [e.labels for e in examples], [e.ideal for e in examples],
        len(extractor.names),
    )  # fmt: skip


def split_keys(keys: Iterable[str], valid_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded split of sorted keys into (train, valid); both non-empty."""
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be between 0 and 1 (exclusive), got {valid_fraction}")
    ordered = sorted(set(keys))
    if len(ordered) < 2:
        raise ValueError(f"need at least 2 queries to split into train and validation, got {len(ordered)}")
    shuffled = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
    n_valid = min(max(1, round(len(ordered) * valid_fraction)), len(ordered) - 1)
    return sorted(shuffled[n_valid:]), sorted(shuffled[:n_valid])


@dataclass
class TrainingResult:
    best: str
    models: dict[str, RankingModel]
    metrics: dict[str, dict[str, Any]]
    importance: dict[str, float] = field(default_factory=dict)

    @property
    def model(self) -> RankingModel:
        return self.models[self.best]


def train_rankers(
    train: Groups,
    valid: Groups,
    *,
    seed: int = 0,
    kinds: Sequence[str] = MODEL_KINDS,
    options: Mapping[str, dict[str, Any]] | None = None,
    names: Sequence[str] | None = None,
) -> TrainingResult:
    """Train every model kind with early stopping on `valid`; keep the best validation nDCG@10.

    Ties go to the kind listed first. `options` passes constructor arguments per kind.
    """
    if not kinds:
        raise ValueError(f"no model kinds to train; choose from {list(MODEL_KINDS)}")
    models, metrics = {}, {}
    for kind in kinds:
        model = model_class(kind)(**dict((options or {}).get(kind, {})))
        metrics[kind] = model.fit(train, valid, seed=seed)
        models[kind] = model
    best = max(kinds, key=lambda k: (metrics[k][SELECTION_METRIC], -list(kinds).index(k)))
    trees = models.get("lambdamart")
    importance = trees.feature_importance(list(names)) if isinstance(trees, LambdaMart) and names else {}
    return TrainingResult(best, models, metrics, importance)


def metrics_table(metrics: Mapping[str, Mapping[str, Any]], best: str) -> str:
    """A markdown table of train and validation nDCG@10 per model kind."""
    lines = ["| model | train nDCG@10 | valid nDCG@10 | kept |", "| --- | --- | --- | --- |"]
    for kind, values in metrics.items():
        kept = "yes" if kind == best else ""
        lines.append(f"| {kind} | {values['train_ndcg@10']:.4f} | {values['valid_ndcg@10']:.4f} | {kept} |")
    return "\n".join(lines)


def fusion_metrics(train: Groups, valid: Groups) -> dict[str, float]:
    """nDCG@10 of the candidates in the order the pipeline merged them (what fusion alone returns)."""

    def merged_order(groups: Groups) -> np.ndarray:
        parts = [-np.arange(s.stop - s.start, dtype=np.float64) for s in groups.slices()]
        return np.concatenate(parts) if parts else np.zeros(0)

    return {
        "train_ndcg@10": mean_ndcg(train, merged_order(train)),
        "valid_ndcg@10": mean_ndcg(valid, merged_order(valid)),
    }
