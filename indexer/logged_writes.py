"""The service's real-time writes as records of the write log, and what a build folds in from them.

Records (`indexer.write_log` payloads):

- ``{"kind": "events", "events": [{"user_id", "item_id", "timestamp", "weight"}, ...]}``: behaviour events
  as `POST /collections/{name}/events` accepted them (timestamp in epoch seconds, weight 1 by default);
- ``{"kind": "delete", "id": ITEM_ID}``: an item removed by `DELETE /collections/{name}/items/{id}`;
- ``{"kind": "upsert", "id": ITEM_ID, "fields": {...}}``: an item added or replaced by
  `PUT /collections/{name}/items/{id}`, its fields keyed as `indexer.items.written_fields` lists them.

A build takes a snapshot of the log (`WriteLog.roll`, offset S) and folds every record before S into its
inputs: logged events are appended to the behaviour input (or become it when the build has none), deleted
items are left out of the catalogue, and written items replace the row of the same id or follow the last
row (the last write of an id wins, in log order). The manifest records S as ``writes.upto``; a service serving
that version replays only the records from S on, so nothing is counted twice and nothing written while the
build ran is lost. Every build folds the log from its start: the log, not the input files, holds these
writes, so it is kept (it grows with the writes; a build never shortens it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.events import Events
from indexer.write_log import WRITES_DIR, WriteLog

EVENTS = "events"
DELETE = "delete"
UPSERT = "upsert"


def events_record(events: Iterable[tuple[str, str, int, float]]) -> dict[str, Any]:
    """The record of one request's events, each (user_id, item_id, timestamp, weight)."""
    return {
        "kind": EVENTS,
        "events": [
            {"user_id": user, "item_id": item, "timestamp": int(timestamp), "weight": float(weight)}
            for user, item, timestamp, weight in events
        ],
    }


def delete_record(item_id: str) -> dict[str, Any]:
    return {"kind": DELETE, "id": item_id}


def upsert_record(item_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"kind": UPSERT, "id": item_id, "fields": fields}


def write_log_of(root: Path) -> WriteLog:
    """The write log of the index root `root`."""
    return WriteLog(Path(root) / WRITES_DIR)


@dataclass
class FoldedWrites:
    """The log's records before `upto`, as a build folds them."""

    upto: int = 0
    users: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    written: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> fields, last write of each

    def events(self) -> Events | None:
        """The logged events as columns (None when there are none)."""
        if not self.users:
            return None
        return Events(
            user_ids=np.array(self.users, dtype=str),
            item_ids=np.array(self.items, dtype=str),
            timestamps=np.array(self.timestamps, dtype=np.int64),
            weights=np.array(self.weights, dtype=np.float32),
        )

    def summary(self) -> dict[str, int]:
        """What the manifest records: the snapshot offset and how many writes were folded."""
        return {
            "upto": self.upto,
            "events": len(self.users),
            "deleted_items": len(self.deleted),
            "written_items": len(self.written),
        }


def fold_log(root: Path) -> FoldedWrites:
    """Take a snapshot of the write log of `root` and read every record before it (an empty result, with no
    folder created, when the root has no log)."""
    log = write_log_of(root)
    if not log.segments():
        return FoldedWrites()
    folded = FoldedWrites(upto=log.roll())
    for record in log.read():
        if record.offset >= folded.upto:
            break
        payload = record.payload
        if payload["kind"] == EVENTS:
            for event in payload["events"]:
                folded.users.append(event["user_id"])
                folded.items.append(event["item_id"])
                folded.timestamps.append(int(event["timestamp"]))
                folded.weights.append(float(event["weight"]))
        elif payload["kind"] == DELETE:
            folded.deleted.add(payload["id"])
            folded.written.pop(payload["id"], None)
        elif payload["kind"] == UPSERT:
            folded.deleted.discard(payload["id"])
            folded.written.pop(payload["id"], None)  # a rewritten id moves to its last write's place
            folded.written[payload["id"]] = payload["fields"]
    return folded


def with_logged_events(events: Events | None, logged: Events | None) -> Events | None:
    """The behaviour input with the logged events appended (in log order, after the file's)."""
    if logged is None:
        return events
    if events is None:
        return logged
    base_weights = events.weights if events.weights is not None else np.ones(len(events), dtype=np.float32)
    logged_weights = logged.weights if logged.weights is not None else np.ones(len(logged), dtype=np.float32)
    return Events(
        user_ids=np.concatenate([events.user_ids, logged.user_ids]),
        item_ids=np.concatenate([events.item_ids, logged.item_ids]),
        timestamps=np.concatenate([events.timestamps, logged.timestamps]),
        weights=np.concatenate([base_weights, logged_weights]),
        skipped=events.skipped,
        skipped_count=events.skipped_count,
    )
