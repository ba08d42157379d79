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


def split_events(events_path: Path, config: BuildConfig, n: int = 1) -> LeaveLastOutSplit:
    events = read_events(events_path, config.events)
    triples = zip(events.user_ids.tolist(), events.item_ids.tolist(), events.timestamps.tolist(), strict=True)
    return leave_last_out(triples, n)


HISTORY_FILE = "history.csv"


def _write_history(split: LeaveLastOutSplit, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "timestamp"])
        writer.writerows((user, item, int(ts)) for user, item, ts in split.history)


def rebuild_on_history(
    root: Path,
    events_path: Path,
    workdir: Path,
    *,
    hold_out: int = 1,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[Path, LeaveLastOutSplit]:
    """Rebuild `root`'s collection (same corpus and configuration) on `events_path` without each user's
    last `hold_out` events; return the rebuilt root (under `workdir`, beside `history.csv`) and the split."""
    manifest = read_manifest(resolve_artifact(root), kind=COLLECTION_KIND)
    config = BuildConfig.model_validate(manifest["params"]["config"])
    corpus = Path(manifest["params"]["corpus"])
    if not corpus.exists():
        raise FileNotFoundError(
            f"{root} was built from {corpus}, which is not there (a relative path is taken from where the "
            "build ran); a rebuild on the history needs the same corpus"
        )
    split = split_events(events_path, config, hold_out)
    if not split.held_out:
        raise ValueError(f"{events_path}: no user has two or more events, so nothing can be held out")
    workdir.mkdir(parents=True, exist_ok=True)
    history = workdir / HISTORY_FILE
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
    return rebuilt, split


def recommend_all(
    service: CollectionService, users: list[str], k: int, progress: bool
) -> dict[str, list[str]]:
    """Each user's `/recommend` list (ids), from the service's pipeline and scorer."""
    return {
        user: [hit.id for hit in service.search(service.recommendation(k, user_id=user)).hits]
        for user in tqdm(users, f"users ({service.ranker.scorer})", disable=not progress, unit="user")
    }


def evaluate_holdout(
    root: Path,
    events_path: Path,
    workdir: Path,
    *,
    k: int = 10,
    ranker: Path | None = None,
    train_ranker: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> HoldoutReport:
    """Rebuild `root`'s collection on history only, then evaluate the fusion order and the baselines.

    `ranker`: also evaluate this ranker on the rebuilt collection (it must not have been trained on the
    held-out events). `train_ranker`: train one for the comparison on the history alone (its own training
    labels are each user's last events of that history, `retrieval.training.train_recommend_ranker`).
    """
    rebuilt, split = rebuild_on_history(root, events_path, workdir, progress=progress, log=log)
    held_out = split.held_out
    users = sorted(held_out)
    service = CollectionService.open(rebuilt)
    encoder = service.collection.encoder  # loaded once: the ranker's service below reuses it
    try:
        runs = {"searchrec": recommend_all(service, users, k, progress)}
    finally:
        service.close()
    if train_ranker:
        from retrieval.training import TARGET_EVENTS, train_recommend_ranker

        log(f"training a ranker on the history (labels: each user's last {TARGET_EVENTS} history events)")
        trained = train_recommend_ranker(
            rebuilt, workdir / HISTORY_FILE, workdir / "ranker", workdir / "ranker-training",
            progress=progress, log=log,
        )  # fmt: skip
        ranker = trained.path
    if ranker is not None:
        service = CollectionService.open(rebuilt, encoder=encoder, ranker=ranker)
        try:
            if service.ranker.error:
                raise ValueError(service.ranker.error)
            runs[f"searchrec+{service.ranker.scorer}"] = recommend_all(service, users, k, progress)
        finally:
            service.close()
    data = InteractionMatrix.from_events(split.history)
    catalogue = len(data.items)
    metrics = {
        name: evaluate_recommendations(fn(data, users, k), held_out, k, catalogue)
        for name, fn in BASELINES.items()
    }
    for name, run in runs.items():
        metrics[name] = evaluate_recommendations(run, held_out, k, catalogue)
    return HoldoutReport(users=len(users), history_events=len(split.history), metrics=metrics)
