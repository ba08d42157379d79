"""Training jobs for the learned ranker, run through the service's own recall pipeline.

Both jobs open the collection as the service does, with a `CandidateRecorder` in the scorer's seat, so the
candidates a model learns from are exactly the merged candidates a served request hands its scorer, and
featurise them with the `FeatureExtractor` the serving scorer uses.

- `train_search_ranker`: judged queries (BEIR queries + qrels) -> a ranker for `/search`. A share of the
  training queries is also run with each branch left out (branch dropout).
- `train_recommend_ranker`: a behaviour log -> a next-item ranker for `/recommend`. Each user's last event is
  the label; the collection is rebuilt on the events before it, so no behaviour feature has seen the label.

Users or queries are split into train and validation (seeded); LambdaMART and the list-wise MLP are trained
with early stopping on validation nDCG@10, and the better one is published as a ranker artifact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from jobs.evaluation import check_qrels_match_queries, read_qrels, read_queries
from jobs.history import rebuild_on_history
from ranker.artifact import write_ranker
from ranker.domain import DomainProfile
from ranker.features import (
    CollectionView,
    FeatureDeclaration,
    FeatureExtractor,
    default_recommend_declaration,
    default_search_declaration,
)
from ranker.features.declarations import resolve
from ranker.models import Groups
from ranker.training import (
    MODEL_KINDS,
    CandidateRecorder,
    choose_bounds,
    collect_recommend_examples,
    collect_search_examples,
    dropout_keys,
    featurize,
    fusion_metrics,
    split_keys,
    train_rankers,
    truncated,
)
from retrieval.candidates import SearchQuery
from retrieval.pipeline import PipelineConfig
from retrieval.service import CollectionService

TARGET_EVENTS = 5  # held-out events per user labelling a recommendation training list
# One list per user gives few lists (610 on MovieLens): smaller trees than for search, where the default
# 127 leaves overfit (train nDCG@10 0.38 vs validation 0.096 on MovieLens's history).
RECOMMEND_MODELS: dict[str, dict[str, Any]] = {
    "lambdamart": {"params": {"num_leaves": 15, "min_data_in_leaf": 100}}
}


@dataclass
class TrainedRanker:
    version: str
    path: Path
    best: str
    metrics: dict[str, dict[str, Any]]  # model kind -> train/valid nDCG@10 and fitting details
    fusion: dict[str, float]  # the merged order's own train/valid nDCG@10
    notes: list[str] = field(default_factory=list)


@dataclass
class _Recording:
    service: CollectionService
    extractor: FeatureExtractor
    recorder: CandidateRecorder
    branches: list[str]  # the pipeline's recall branches, in order


def domain_profile(names: Sequence[str], train: Groups, valid: Groups) -> DomainProfile:
    """The ranker's domain from its whole training requests (not the branch-dropout variants, whose keys
    hold "~"), calibrated on the validation requests."""
    full = [train.features[s] for key, s in zip(train.keys, train.slices(), strict=True) if "~" not in key]
    return DomainProfile.fit(names, full, [valid.features[s] for s in valid.slices()])


def _open(index: Path, depth: int, declaration: FeatureDeclaration) -> _Recording:
    """The collection's service, scoring like fusion and recording what its scorer sees, and the extractor
    for the declaration on it (optional features it cannot compute dropped)."""
    recorder = CandidateRecorder()
    service = CollectionService.open(index, scorer=recorder, config=PipelineConfig(branch_limit=depth))
    branches = [source.name for source in service.pipeline.sources]
    view = CollectionView(service.collection)
    extractor = FeatureExtractor(resolve(declaration, view, branches), view, branches=branches)
    return _Recording(service, extractor, recorder, branches)


def train_search_ranker(
    index: Path,
    out: Path,
    queries_path: Path,
    qrels_path: Path,
    *,
    declaration: FeatureDeclaration | None = None,
    valid_fraction: float = 0.2,
    seed: int = 0,
    depth: int = 100,
    dropout: float = 0.5,
    kinds: Sequence[str] = MODEL_KINDS,
    progress: bool = True,
) -> TrainedRanker:
    judged, texts = read_qrels(qrels_path), read_queries(queries_path)
    check_qrels_match_queries(judged, texts, qrels_path, queries_path)
    rec = _open(index, depth, declaration or default_search_declaration())
    try:

        def run(text: str, only: frozenset[str] | None) -> tuple:
            rec.service.run(SearchQuery(text=text, k=10, branches=only))
            return rec.recorder.take()

        train_keys, valid_keys = split_keys([q for q in judged if q in texts], valid_fraction, seed)
        collect = partial(
            collect_search_examples, run, rec.extractor.ids_of, texts, judged, progress=progress
        )
        train_examples = collect(keys=train_keys, dropout=dropout_keys(train_keys, dropout, seed))
        valid_examples = collect(keys=valid_keys)
        # Served requests outside the model's regime (a gated branch found nothing) keep the fusion order,
        # so validation leaves them out; training keeps its dropout lists without such a branch (on SciFact
        # train they raise validation nDCG@10 from 0.805 to 0.822).
        covered = [rec.extractor.covers(e.candidates) for e in valid_examples]
        uncovered = covered.count(False)
        valid_examples = [e for e, keep in zip(valid_examples, covered, strict=True) if keep]
        bounds = choose_bounds(rec.extractor, train_examples, valid_examples, seed=seed)
        train = featurize(rec.extractor, truncated(train_examples, bounds.limit))
        valid = featurize(rec.extractor, truncated(valid_examples, bounds.limit))
        result = train_rankers(
            train, valid, seed=seed, kinds=kinds, names=rec.extractor.names,
            options={"lambdamart": {"params": bounds.options}},
        )  # fmt: skip
        recalled = sum(bool(e.labels.any()) for e in valid_examples)
        fusion = fusion_metrics(train, valid)
        training = {
            "task": "search", "index": str(rec.service.collection.path),
            "collection": rec.service.collection.name, "collection_version": rec.service.version,
            "queries": str(queries_path), "qrels": str(qrels_path),
            "query_encoder": rec.service.collection.encoder.kind, "train_queries": len(train_keys),
            "train_lists": len(train), "valid_queries": len(valid),
            "valid_queries_with_relevant_in_recall": recalled, "seed": seed, "valid_fraction": valid_fraction,
            "branch_depth": depth, "branch_dropout": dropout, "pipeline_branches": rec.branches,
            "candidates": int(len(train.labels) + len(valid.labels)), "feature_importance": result.importance,
            "fusion": fusion, "gates": rec.extractor.declaration.gates,
            "valid_queries_served_by_fusion": uncovered, "max_candidates": bounds.limit,
            "bounds_tried": bounds.tried,
        }  # fmt: skip
        domain = domain_profile(rec.extractor.names, train, valid)
        training["domain_refused_valid_share"] = domain.refused_valid_share
        version, path = write_ranker(
            out, result.model, rec.extractor.declaration, metrics=result.metrics, training=training,
            domain=domain,
        )  # fmt: skip
    finally:
        rec.service.close()
    gates = ", ".join(rec.extractor.declaration.gates) or "none"
    tried = ", ".join(f"{setting} {score:.4f}" for setting, score in bounds.tried.items())
    bound_note = (
        f"scores at most {bounds.limit or 'all'} candidates (best fused first) with "
        f"{bounds.options.get('num_leaves', 'default')} leaves, chosen on validation nDCG@10: {tried}"
    )
    note = (
        f"{len(train_keys)} training queries ({len(train)} lists with branch dropout), {len(valid)} "
        f"validation queries; {len(valid) - recalled} of those have no relevant document in recall and count "
        f"as 0 in nDCG@10; {uncovered} lack a branch the features are gated on ({gates}), keep the fusion "
        f"order and are left out; queries embedded by {training['query_encoder']}"
    )
    return TrainedRanker(version, path, result.best, result.metrics, fusion, [note, bound_note])


def train_recommend_ranker(
    index: Path,
    events_path: Path,
    out: Path,
    workdir: Path,
    *,
    declaration: FeatureDeclaration | None = None,
    valid_fraction: float = 0.2,
    seed: int = 0,
    depth: int = 100,
    targets: int = TARGET_EVENTS,
    kinds: Sequence[str] = MODEL_KINDS,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> TrainedRanker:
    """Next-items ranking: rebuild `index`'s collection on `events_path` without each user's last `targets`
    events, recommend for every such user through the pipeline, label the candidates that are among those
    events, train. (One list per user; several labels per list give the model more to learn from than the
    single next item that evaluation asks for.)

    The ranker serves `index` (or any collection with the same kinds of parts); its features read the
    serving collection's behaviour, which then includes the events that were labels here.
    """
    rebuilt, split = rebuild_on_history(
        index, events_path, workdir, hold_out=targets, progress=progress, log=log
    )
    rec = _open(rebuilt, depth, declaration or default_recommend_declaration())
    try:

        def run(user: str) -> tuple:
            rec.service.run(rec.service.recommendation(10, user_id=user))
            return rec.recorder.take()

        train_keys, valid_keys = split_keys(sorted(split.held_out), valid_fraction, seed)
        collect = partial(
            collect_recommend_examples, run, rec.extractor.ids_of, split.targets, progress=progress
        )
        train, valid = (featurize(rec.extractor, collect(keys=keys)) for keys in (train_keys, valid_keys))
        result = train_rankers(
            train, valid, seed=seed, kinds=kinds, names=rec.extractor.names, options=RECOMMEND_MODELS
        )
        fusion = fusion_metrics(train, valid)
        found = int(sum(bool(valid.labels[s].any()) for s in valid.slices()))
        training = {
            "task": "recommend", "index": str(index), "behaviour": str(events_path),
            "rebuilt_on_history": str(rebuilt), "collection": rec.service.collection.name,
            "train_users": len(train), "valid_users": len(valid), "valid_users_with_label_in_recall": found,
            "seed": seed, "valid_fraction": valid_fraction, "branch_depth": depth, "target_events": targets,
            "pipeline_branches": rec.branches, "candidates": int(len(train.labels) + len(valid.labels)),
            "feature_importance": result.importance, "fusion": fusion,
        }  # fmt: skip
        domain = domain_profile(rec.extractor.names, train, valid)
        training["domain_refused_valid_share"] = domain.refused_valid_share
        version, path = write_ranker(
            out, result.model, rec.extractor.declaration, metrics=result.metrics, training=training,
            domain=domain,
        )  # fmt: skip
    finally:
        rec.service.close()
    note = (
        f"{len(train)} training users, {len(valid)} validation users (labels: each user's last {targets} "
        f"events); {len(valid) - found} validation users have none of them among the candidates (nDCG 0)"
    )
    return TrainedRanker(version, path, result.best, result.metrics, fusion, [note])
