"""A behaviour log split into history and held-out events, and a collection rebuilt on the history alone.

Shared by the recommendation ranker's training job (`jobs.train_ranker`: labels are each user's last events)
and the leave-last-out evaluation (`jobs.holdout`: the target is each user's last event). Both rebuild the
collection on the history, so no behaviour part of it has seen what is held out.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from indexer.build import build_collection, encoder_for
from indexer.events import read_events
from indexer.manifests import read_collection_params
from indexer.schemas import SUPPLIED, EventSchema
from indexer.versions import resolve_artifact
from jobs.evaluation.recommend import LeaveLastOutSplit, leave_last_out

HISTORY_FILE = "history.csv"


def split_events(events_path: Path, events: EventSchema, n: int = 1) -> LeaveLastOutSplit:
    """Each user's last `n` events held out of the log at `events_path` (columns mapped by `events`)."""
    read = read_events(events_path, events)
    triples = zip(read.user_ids.tolist(), read.item_ids.tolist(), read.timestamps.tolist(), strict=True)
    return leave_last_out(triples, n)


def write_history(split: LeaveLastOutSplit, path: Path) -> None:
    """The split's history as a `user_id,item_id,timestamp` CSV (the default `EventSchema`)."""
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
    params = read_collection_params(resolve_artifact(root))
    corpus = Path(params.corpus)
    if not corpus.exists():
        raise FileNotFoundError(
            f"{root} was built from {corpus}, which is not there (a relative path is taken from where the "
            "build ran); a rebuild on the history needs the same corpus"
        )
    split = split_events(events_path, params.config.events, hold_out)
    if not split.held_out:
        raise ValueError(f"{events_path}: no user has two or more events, so nothing can be held out")
    workdir.mkdir(parents=True, exist_ok=True)
    history = workdir / HISTORY_FILE
    write_history(split, history)
    rebuilt = workdir / "index"
    history_config = params.config.model_copy(update={"events": EventSchema(), "keep_versions": 1})
    log(f"rebuilding {corpus} on {len(split.history)} history events")
    build_collection(
        corpus,
        rebuilt,
        history_config,
        behaviour=history,
        # items with their own vectors are read again, with no encoder
        encoder=None if params.encoder.kind == SUPPLIED else encoder_for(params.config, Path(root)),
        progress=progress,
    )
    return rebuilt, split
