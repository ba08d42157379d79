"""Real-time writes on top of a served version: behaviour events, item upserts and deletes, on disk before
the answer, applied in memory, replayed at start.

`LiveWrites` belongs to one loaded version of a collection. A write is appended to the index root's write
log (`indexer.write_log`: one record per request, fsynced before `record_events` or `delete` returns), then
every record not applied yet is applied in log order, this process's and those other processes (the other
workers of a `serve`) wrote. A version starts from the log offset its build folded up to (``writes.upto`` in
its manifest; `indexer.logged_writes`), so a restart or a reload replays exactly the writes that version
lacks, and a rebuild folds them in for good. Each worker also follows the log in the background
(`CollectionRegistry.follow_writes`), so a write one worker acknowledged reaches the others within one poll
interval plus the time to apply it.

What a write changes:

- events: the user's history (`indexer.behaviour.Behaviour.add_events`), hence item-to-item, co-visitation,
  user-preference recall and the ranker's user features; the items' popularity; and the user-item pairs
  co-visitation counts. Events may be older than the user's newest; histories stay in time order.
- a delete: the item leaves every branch (each honours the request's allowed rows, which leave it out),
  `/similar`, `/items` and `/recommend`, and its id answers as unknown.
- an upsert: the item joins the delta segment (`retrieval.delta`) as a new row, found by every branch in
  the next request; an item it replaces has its old row deleted. Each batch of upserts applied together
  makes a new segment, which the owner installs (`on_change`: the service builds its branches over it).

A version served from a version directory rather than an index root has no log: writes are refused there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.item_parts import keyword_values
from indexer.items import Item, item_from_fields
from indexer.logged_writes import (
    DELETE,
    EVENTS,
    UPSERT,
    delete_record,
    events_record,
    upsert_record,
    write_log_of,
)
from indexer.write_log import LoggedWrite, WriteLog
from retrieval.collection import Collection
from retrieval.delta import WrittenItem, extend, written_items
from retrieval.errors import RequestError, WritesUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    user_id: str
    item_id: str
    timestamp: int
    weight: float = 1.0


class LiveWrites:
    """The writes applied on top of one loaded version; see the module docstring."""

    def __init__(
        self,
        collection: Collection,
        log: WriteLog | None,
        start: int,
        on_change: Callable[[Collection], None] | None = None,
    ) -> None:
        self.built = collection  # the version as loaded
        self.collection = collection  # with the written items (`retrieval.delta.extend`)
        self.log = log
        self.applied = start  # the log offset up to which this version has applied the writes
        self.on_change = on_change
        self.written: list[WrittenItem] = []  # rows len(built), len(built) + 1, ...
        self._pending: list[Item] = []
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls, collection: Collection, root: Path, on_change: Callable[[Collection], None] | None = None
    ) -> LiveWrites:
        """The writes of `collection` loaded from `root`, replayed from the log up to its end."""
        is_root = Path(root).resolve() != collection.path.resolve()
        start = int((collection.manifest["params"].get("writes") or {}).get("upto", 0))
        live = cls(collection, write_log_of(root) if is_root else None, start, on_change)
        live.catch_up()
        return live

    # --------------------------------------------------------------------------------------- writing
    def record_events(self, events: list[Event]) -> LoggedWrite:
        """Log `events` durably, then apply them; RequestError naming the first bad one."""
        log = self._writable()
        behaviour = self.collection.behaviour
        if behaviour is None:
            raise RequestError(
                "events",
                f"collection {self.collection.name!r} was built without behaviour events; build it with a "
                "behaviour log (searchrec build --behaviour FILE) to record events",
            )
        for i, event in enumerate(events):
            if self._alive_row(event.item_id) is None:
                raise RequestError(
                    f"events.{i}.item_id", f"unknown item id {event.item_id!r} in this collection"
                )
        record = events_record((e.user_id, e.item_id, e.timestamp, e.weight) for e in events)
        written = log.append(record)
        self.catch_up()
        return written

    def delete(self, item_id: str) -> LoggedWrite | None:
        """Log the deletion of `item_id` durably, then apply it; None when it is already gone."""
        log = self._writable()
        if self._alive_row(item_id) is None:
            return None
        written = log.append(delete_record(item_id))
        self.catch_up()
        return written

    def upsert(self, item_id: str, fields: dict[str, Any]) -> LoggedWrite:
        """Check `fields` as the build checks an item row (RequestError naming the first bad field), log the
        write durably, then apply it: the item is found from the next request on."""
        log = self._writable()
        item, problems = item_from_fields(item_id, fields, self.collection.params.config.items)
        if item is None:
            name, problem = problems[0]
            raise RequestError(f"body.{name}", problem)
        dim = self.collection.vectors.dim
        if item.vector is not None and len(item.vector) != dim:
            raise RequestError(
                "body.vector", f"has {len(item.vector)} dimensions; this collection's vectors have {dim}"
            )
        for name, values in keyword_values(item, self.collection.params.config.items).items():
            single = getattr(self.collection.keywords.fields.get(name), "codes", None) is not None
            if single and len(set(values)) > 1:  # the ranker's keyword features read one value per item
                raise RequestError(
                    f"body.{name}",
                    f"gives {len(set(values))} values; every item of this collection holds at most one here "
                    "(as built): write one, or rebuild with items holding several",
                )
        written = log.append(upsert_record(item_id, fields))
        self.catch_up()
        return written

    def _writable(self) -> WriteLog:
        if self.log is None:
            raise WritesUnavailableError(
                f"collection {self.collection.name!r} is served from a version directory, not an index "
                "root, so it takes no writes; serve its index root instead"
            )
        return self.log

    def _alive_row(self, item_id: str) -> int | None:
        row = self.collection.row_of.get(item_id)
        return None if row is None or self.collection.is_deleted(row) else row

    # -------------------------------------------------------------------------------------- applying
    def catch_up(self) -> int:
        """Apply every record logged since the last one applied, in log order; how many were applied."""
        if self.log is None:
            return 0
        with self._lock:
            applied, changed = 0, False
            for record in self.log.read(self.applied):
                if record.payload["kind"] != UPSERT:
                    changed |= self._flush()  # the rows an event or a delete names must exist
                self._apply(record.payload)
                self.applied = record.end
                applied += 1
            changed |= self._flush()
            if changed and self.on_change is not None:
                self.on_change(self.collection)
            return applied

    def pending(self) -> bool:
        """Whether the log holds records this version has not applied (a cheap check: its end)."""
        return self.log is not None and self.log.end() > self.applied

    def _apply(self, payload: dict[str, Any]) -> None:
        if payload["kind"] == EVENTS:
            self._apply_events(payload["events"])
        elif payload["kind"] == DELETE:
            row = self.collection.row_of.get(payload["id"])
            if row is not None:
                self.collection.delete_row(row)
        elif payload["kind"] == UPSERT:
            item, problems = item_from_fields(
                payload["id"], payload["fields"], self.built.params.config.items
            )
            if item is None:  # checked when it was written; another version may map items otherwise
                log.error("write log: item %r cannot be applied to this version: %s", payload["id"], problems)
                return
            self._pending.append(item)

    def _flush(self) -> bool:
        """Put the upserts applied since the last flush into a new delta segment; whether there were any."""
        if not self._pending:
            return False
        current = self.collection
        fresh = written_items(self.built, self._pending)
        alive = np.ones(len(current) + len(fresh), dtype=bool)
        if current.alive is not None:
            alive[: len(current)] = current.alive
        batch: dict[str, int] = {}  # the rows this batch gives; an id written twice in it keeps its last
        for position, item in enumerate(self._pending):
            replaced = batch.get(item.id, current.row_of.get(item.id))
            if replaced is not None:
                alive[replaced] = False
            batch[item.id] = len(current) + position
        extended = extend(self.built, current, [*self.written, *fresh], alive)  # may raise: nothing changed
        self._pending, self.written, self.collection = [], [*self.written, *fresh], extended
        return True

    def _apply_events(self, events: list[dict[str, Any]]) -> None:
        behaviour = self.collection.behaviour
        if behaviour is None:
            return  # logged for a version with behaviour; a later build folds them in
        rows = [self.collection.row_of.get(event["item_id"]) for event in events]
        known = [(event, row) for event, row in zip(events, rows, strict=True) if row is not None]
        behaviour.add_events(
            [event["user_id"] for event, _ in known],
            [row for _, row in known],
            [int(event["timestamp"]) for event, _ in known],
            [float(event["weight"]) for event, _ in known],
        )

    def deleted_count(self) -> int:
        alive = self.collection.alive
        return 0 if alive is None else int(len(alive) - np.count_nonzero(alive))
