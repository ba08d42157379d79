"""User behaviour events (`user_id, item_id, timestamp[, weight]`) read through `indexer.schemas.EventSchema`.

`read_events` returns them as parallel numpy columns in file order; timestamps are epoch seconds (int64, UTC)
from epoch numbers, datetimes or ISO-8601 strings. Bad rows are reported as `indexer.rows` describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer.rows import BadRow, BadRowSink, iter_rows, parse_float, parse_timestamp, text_value
from indexer.schemas import EventSchema

__all__ = ["Events", "read_events"]


@dataclass(slots=True)
class Events:
    """Behaviour events as parallel columns, in file order."""

    user_ids: np.ndarray  # str
    item_ids: np.ndarray  # str
    timestamps: np.ndarray  # int64 seconds since the epoch, UTC
    weights: np.ndarray | None  # float32, when the schema maps a weight column
    skipped: list[BadRow] = field(default_factory=list)
    skipped_count: int = 0

    def __len__(self) -> int:
        return len(self.user_ids)


def _to_event(row: dict, schema: EventSchema) -> tuple[tuple | None, list]:
    problems: list[tuple[str, str]] = []
    user, item = text_value(row.get(schema.user_id)), text_value(row.get(schema.item_id))
    if user is None:
        problems.append(("user_id", f"missing user id (column {schema.user_id!r})"))
    if item is None:
        problems.append(("item_id", f"missing item id (column {schema.item_id!r})"))
    raw_time = row.get(schema.timestamp)
    timestamp = parse_timestamp(raw_time)
    if timestamp is None:
        problems.append(("timestamp", f"{raw_time!r} is not epoch seconds or an ISO-8601 time"))
    weight = 1.0
    if schema.weight is not None:
        raw_weight = row.get(schema.weight)
        parsed = parse_float(raw_weight)
        if parsed is None:
            problems.append(("weight", f"{raw_weight!r} is not a finite number"))
        weight = parsed if parsed is not None else weight
    return (None if problems else (user, item, timestamp, weight)), problems


def read_events(
    path: Path,
    schema: EventSchema | None = None,
    *,
    fmt: str | None = None,
    skip_bad_rows: bool = False,
) -> Events:
    """Read a behaviour log. Events on items outside the catalogue are kept: the build drops and counts
    them (`indexer.behaviour`)."""
    path, schema = Path(path), schema or EventSchema()
    sink = BadRowSink(path)
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    weights: list[float] = []
    for line, row in iter_rows(path, schema.columns(), fmt=fmt):
        if isinstance(row, BadRow):
            sink.add([row])
            continue
        event, problems = _to_event(row, schema)
        if event is None:
            sink.add(BadRow(str(path), line, name, message) for name, message in problems)
            continue
        users.append(event[0])
        items.append(event[1])
        times.append(event[2])
        weights.append(event[3])
    sink.finish(skip_bad_rows, what="events")
    return Events(
        user_ids=np.array(users, dtype=str),
        item_ids=np.array(items, dtype=str),
        timestamps=np.array(times, dtype=np.int64),
        weights=np.array(weights, dtype=np.float32) if schema.weight is not None else None,
        skipped=sink.rows,
        skipped_count=sink.row_count,
    )
