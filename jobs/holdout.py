"""Leave-last-out evaluation of `/recommend`: hold out each user's last event, rebuild the collection from
the rest, ask the service's recommendation pipeline for every held-out user, and compare with popularity and
item-kNN baselines computed on the same split in the same run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from jobs.evaluation.recommend import BASELINES, InteractionMatrix, evaluate_recommendations
from jobs.history import HISTORY_FILE, rebuild_on_history
from jobs.train_ranker import TARGET_EVENTS, train_recommend_ranker
from retrieval.service import CollectionService


@dataclass(frozen=True, slots=True)
class HoldoutReport:
    users: int
    history_events: int
    metrics: dict[str, dict[str, float]]  # run name -> metric -> value


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
    labels are each user's last events of that history, `jobs.train_ranker.train_recommend_ranker`).
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
