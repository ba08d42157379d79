"""Leave-last-out evaluation of `/recommend`: hold out each user's last event, rebuild the collection from
the rest, ask the service's recommendation pipeline for every held-out user, and compare with popularity and
item-kNN baselines computed on the same split in the same run."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from indexer.artifact import read_manifest
from indexer.build import COLLECTION_KIND, build_collection, encoder_for
from indexer.config import BuildConfig
from indexer.items import EventSchema, read_events
from indexer.versions import resolve_artifact
from retrieval.evaluation.recommend import (
    BASELINES,
    InteractionMatrix,
    LeaveLastOutSplit,
    evaluate_recommendations,
    leave_last_out,
)
from retrieval.service import CollectionService


@dataclass(frozen=True, slots=True)
class HoldoutReport:
    users: int
    history_events: int
    metrics: dict[str, dict[str, float]]  # run name -> metric -> value


def split_events(events_path: Path, config: BuildConfig) -> LeaveLastOutSplit:
    events = read_events(events_path, config.events)
    triples = zip(events.user_ids.tolist(), events.item_ids.tolist(), events.timestamps.tolist(), strict=True)
    return leave_last_out(triples)


def _write_history(split: LeaveLastOutSplit, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "timestamp"])
        writer.writerows((user, item, int(ts)) for user, item, ts in split.history)


def evaluate_holdout(
    root: Path,
    events_path: Path,
    workdir: Path,
    *,
    k: int = 10,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> HoldoutReport:
    """Rebuild `root`'s collection (same corpus and configuration) on history only, then evaluate."""
    manifest = read_manifest(resolve_artifact(root), kind=COLLECTION_KIND)
    config = BuildConfig.model_validate(manifest["params"]["config"])
    corpus = Path(manifest["params"]["corpus"])
    split = split_events(events_path, config)
    if not split.held_out:
        raise ValueError(f"{events_path}: no user has two or more events, so nothing can be held out")
    workdir.mkdir(parents=True, exist_ok=True)
    history = workdir / "history.csv"
    _write_history(split, history)
    rebuilt = workdir / "index"
    history_config = config.model_copy(update={"events": EventSchema(), "keep_versions": 1})
    log(f"rebuilding {corpus} on {len(split.history)} history events")
    build_collection(
        corpus,
        rebuilt,
        history_config,
        behaviour=history,
        encoder=encoder_for(config, Path(root)),
        progress=progress,
    )
    service = CollectionService.open(rebuilt)
    try:
        users = sorted(split.held_out)
        ours = {
            user: [hit.id for hit in service.search(service.recommendation(k, user_id=user)).hits]
            for user in tqdm(users, "users", disable=not progress, unit="user")
        }
    finally:
        service.close()
    data = InteractionMatrix.from_events(split.history)
    catalogue = len(data.items)
    metrics = {
        name: evaluate_recommendations(fn(data, users, k), split.held_out, k, catalogue)
        for name, fn in BASELINES.items()
    }
    metrics["searchrec"] = evaluate_recommendations(ours, split.held_out, k, catalogue)
    return HoldoutReport(users=len(users), history_events=len(split.history), metrics=metrics)
