"""Read catalogue items and user behaviour events from JSONL, CSV or Parquet through a typed column mapping.

`ItemSchema` names the source columns of the id, text fields, category, tags, coordinates, popularity and
extra features; `read_items` turns every row into an `Item`. `EventSchema` does the same for behaviour logs
(`user_id, item_id, timestamp[, weight]`), which `read_events` returns as numpy columns.

A row that fails validation (missing or duplicate id, coordinates out of range, a non-numeric number, a bad
timestamp) becomes `BadRow(file, line, field, message)`. By default all bad rows are collected and one
`BadRowsError` listing them is raised once the whole file was read (it names the CLI's `--skip-bad-rows`);
with `skip_bad_rows=True` they are left out and returned in `.skipped`. `line` is the 1-based physical line
for JSONL and CSV (the CSV header is line 1) and the 0-based row index for Parquet.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "BadRow",
    "BadRowsError",
    "EventSchema",
    "Events",
    "Item",
    "ItemSchema",
    "ItemsResult",
    "item_records",
    "iter_rows",
    "read_events",
    "read_items",
    "sequences_by_user",
]

logger = logging.getLogger(__name__)

FORMATS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
LISTED_BAD_ROWS = 20  # how many bad rows a BadRowsError message lists
KEPT_BAD_ROWS = 1000  # how many skipped bad rows a result keeps (all are counted)


@dataclass(frozen=True, slots=True)
class BadRow:
    """One problem in one input row; `field` is None when the row as a whole is unreadable."""

    file: str
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field or 'row'}: {self.message}"


class BadRowsError(ValueError):
    """Raised after a whole file was read when some rows were bad; `bad_rows` holds the first ones."""

    def __init__(self, path: Path, bad_rows: list[BadRow], row_count: int, problem_count: int) -> None:
        self.bad_rows = bad_rows
        self.row_count = row_count
        listed = "\n".join(f"  {row}" for row in bad_rows[:LISTED_BAD_ROWS])
        more = problem_count - min(len(bad_rows), LISTED_BAD_ROWS)
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            f"{path}: {row_count} bad row(s); fix them or pass --skip-bad-rows (skip_bad_rows = true in a "
            f"config) to leave them out:\n"
            f"{listed}{tail}"
        )


class _BadRowSink:
    """Collects bad rows (keeping the first `KEPT_BAD_ROWS`) and counts the distinct input rows affected."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[BadRow] = []
        self.row_count = 0
        self.problem_count = 0

    def add(self, problems: Iterable[BadRow]) -> None:
        problems = list(problems)
        if problems:
            self.row_count += 1
            self.problem_count += len(problems)
            self.rows.extend(problems[: max(0, KEPT_BAD_ROWS - len(self.rows))])

    def finish(self, skip_bad_rows: bool, what: str) -> None:
        if self.row_count and not skip_bad_rows:
            raise BadRowsError(self.path, self.rows, self.row_count, self.problem_count)
        if self.row_count:
            logger.warning(
                "%s: skipped %d bad row(s) of %s; first: %s", self.path, self.row_count, what, self.rows[0]
            )


def _format_of(path: Path, fmt: str | None) -> str:
    chosen = fmt or FORMATS.get(path.suffix.lower())
    if chosen not in set(FORMATS.values()):
        raise ValueError(
            f"unknown format {fmt or path.suffix!r} for {path}; choose one of "
            f"{sorted(set(FORMATS.values()))} or use a suffix in {sorted(FORMATS)}"
        )
    return chosen


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict | BadRow]]:
    with path.open(encoding="utf-8-sig") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                yield number, BadRow(str(path), number, None, f"invalid JSON: {error.msg}")
                continue
            if not isinstance(row, dict):
                yield (
                    number,
                    BadRow(str(path), number, None, f"expected a JSON object, got {type(row).__name__}"),
                )
                continue
            yield number, row


def _missing_columns(path: Path, header: list[str], columns: list[str]) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"{path}: mapped column(s) {missing} not found; the file has columns {header}")


def _iter_csv(path: Path, columns: list[str]) -> Iterator[tuple[int, dict | BadRow]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        _missing_columns(path, header, columns)
        positions = {c: header.index(c) for c in columns}
        start = reader.line_num + 1
        for values in reader:
            number, start = start, reader.line_num + 1  # a quoted field may span several physical lines
            if not values:
                continue
            if len(values) != len(header):
                yield (
                    number,
                    BadRow(str(path), number, None, f"{len(values)} fields, the header has {len(header)}"),
                )
                continue
            yield number, {c: (values[i] if values[i] != "" else None) for c, i in positions.items()}


def _iter_parquet(path: Path, columns: list[str]) -> Iterator[tuple[int, dict | BadRow]]:
    parquet = pq.ParquetFile(path)
    _missing_columns(path, parquet.schema_arrow.names, columns)
    number = 0
    for batch in parquet.iter_batches(batch_size=65_536, columns=columns):
        for row in batch.to_pylist():
            yield number, row
            number += 1


def iter_rows(
    path: Path, columns: list[str], *, fmt: str | None = None
) -> Iterator[tuple[int, dict | BadRow]]:
    """`(line, row)` for each record of a JSONL, CSV or Parquet file; unreadable records come as a `BadRow`.

    CSV and Parquet must have every one of `columns`; JSONL rows may lack keys (their value reads as None).
    Empty CSV cells read as None.
    """
    path = Path(path)
    chosen = _format_of(path, fmt)
    if chosen == "jsonl":
        return _iter_jsonl(path)
    if chosen == "csv":
        return _iter_csv(path, columns)
    return _iter_parquet(path, columns)


def text_value(value: Any, *, join: bool = False) -> str | None:
    """A cell as a stripped string, None when missing or blank; with `join`, lists are joined by spaces."""
    if value is None:
        return None
    if isinstance(value, list | tuple) and join:
        value = " ".join(str(v) for v in value if v is not None)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)  # a Parquet float column holding ids: 12.0 -> "12"
    text = str(value).strip()
    return text or None


def parse_float(value: Any) -> float | None:
    """A finite float from a number or a numeric string; None for anything else (bools included)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parse_timestamp(value: Any) -> int | None:
    """Epoch seconds (int64) from epoch seconds, a datetime/date (naive means UTC) or an ISO-8601 string."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return math.floor(moment.timestamp())
    if isinstance(value, date):
        return math.floor(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    if isinstance(value, str):
        text = value.strip()
        number = parse_float(text)
        if number is None:
            try:
                return parse_timestamp(datetime.fromisoformat(text))
            except ValueError:
                return None
        value = number
    number = parse_float(value)
    return math.floor(number) if number is not None else None


class ItemSchema(BaseModel):
    """Where each part of an item comes from: values are source column names.

    `text` accepts a column name, a list of column names (field name = column name) or a mapping
    `{field name: column}`. `tags` may hold a list or a string split on `tags_delimiter`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Column with the external item id.")
    text: dict[str, str] = Field(min_length=1, description="Text fields: field name -> column.")
    category: str | None = Field(default=None, description="Column with one category label.")
    tags: str | None = Field(default=None, description="Column with tags (a list, or a delimited string).")
    tags_delimiter: str | None = Field(
        default="|", min_length=1, description="Separator of a tag string; None: one tag."
    )
    lat: str | None = Field(default=None, description="Column with latitude in degrees, [-90, 90].")
    lon: str | None = Field(default=None, description="Column with longitude in degrees, [-180, 180].")
    popularity: str | None = Field(default=None, description="Column with a numeric popularity prior.")
    numeric_features: dict[str, str] = Field(
        default_factory=dict, description="Feature name -> numeric column."
    )
    categorical_features: dict[str, str] = Field(default_factory=dict, description="Feature name -> column.")

    @field_validator("text", mode="before")
    @classmethod
    def _text_fields(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {value: value}
        if isinstance(value, list | tuple):
            return {column: column for column in value}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ItemSchema:
        if (self.lat is None) != (self.lon is None):
            raise ValueError(f"lat and lon come together; got lat={self.lat!r}, lon={self.lon!r}")
        clash = set(self.numeric_features) & set(self.categorical_features)
        if clash:
            raise ValueError(f"feature names {sorted(clash)} are both numeric and categorical")
        return self

    def columns(self) -> list[str]:
        """Every source column the mapping reads, in a stable order without repeats."""
        named = [self.id, *self.text.values(), self.category, self.tags, self.lat, self.lon, self.popularity]
        named += [*self.numeric_features.values(), *self.categorical_features.values()]
        return list(dict.fromkeys(c for c in named if c is not None))


@dataclass(slots=True)
class Item:
    """One catalogue entry, as the forward index and the feature code see it."""

    id: str
    fields: dict[str, str]
    category: str | None = None
    tags: list[str] = field(default_factory=list)
    lat: float | None = None
    lon: float | None = None
    popularity: float | None = None
    features: dict[str, float | str] = field(default_factory=dict)

    def text(self, separator: str = "\n") -> str:
        """The non-empty text fields joined in mapping order, for analyzers and encoders."""
        return separator.join(v for v in self.fields.values() if v)

    def title(self) -> str:
        """What a hit shows as title: the `title` field, else the first non-empty text field ('' if none)."""
        return self.fields.get("title") or next((value for value in self.fields.values() if value), "")

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict without the id (the id is the forward-index key)."""
        record: dict[str, Any] = {"fields": self.fields, "tags": self.tags, "features": self.features}
        for name in ("category", "lat", "lon", "popularity"):
            value = getattr(self, name)
            if value is not None:
                record[name] = value
        return record


@dataclass(slots=True)
class ItemsResult:
    items: list[Item]
    skipped: list[BadRow]  # the first bad rows that were skipped (see `skipped_count` for all)
    skipped_count: int = 0


def _split_tags(value: Any, delimiter: str | None) -> list[str]:
    if value is None:
        return []
    parts = (
        value
        if isinstance(value, list | tuple)
        else ([str(value)] if delimiter is None else str(value).split(delimiter))
    )
    return [str(p).strip() for p in parts if p is not None and str(p).strip()]


def _number(row: dict, column: str, name: str, problems: list[tuple[str, str]]) -> float | None:
    value = row.get(column)
    if text_value(value) is None:
        return None
    number = parse_float(value)
    if number is None:
        problems.append((name, f"{value!r} is not a finite number (column {column!r})"))
    return number


def _coordinates(
    row: dict, schema: ItemSchema, problems: list[tuple[str, str]]
) -> tuple[float | None, float | None]:
    if schema.lat is None or schema.lon is None:
        return None, None
    already = len(problems)
    lat = _number(row, schema.lat, "lat", problems)
    lon = _number(row, schema.lon, "lon", problems)
    if lat is not None and not -90.0 <= lat <= 90.0:
        problems.append(("lat", f"{lat} is outside [-90, 90]"))
    if lon is not None and not -180.0 <= lon <= 180.0:
        problems.append(("lon", f"{lon} is outside [-180, 180]"))
    if (lat is None) != (lon is None) and len(problems) == already:
        problems.append(("lat" if lat is None else "lon", "one coordinate is given without the other"))
    return lat, lon


def _to_item(row: dict, schema: ItemSchema) -> tuple[Item | None, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    item_id = text_value(row.get(schema.id))
    if item_id is None:
        problems.append(("id", f"missing id (column {schema.id!r})"))
    lat, lon = _coordinates(row, schema, problems)
    popularity = _number(row, schema.popularity, "popularity", problems) if schema.popularity else None
    features: dict[str, float | str] = {}
    for name, column in schema.numeric_features.items():
        number = _number(row, column, name, problems)
        if number is not None:
            features[name] = number
    for name, column in schema.categorical_features.items():
        label = text_value(row.get(column))
        if label is not None:
            features[name] = label
    if problems or item_id is None:
        return None, problems
    item = Item(
        id=item_id,
        fields={name: text_value(row.get(column), join=True) or "" for name, column in schema.text.items()},
        category=text_value(row.get(schema.category)) if schema.category else None,
        tags=_split_tags(row.get(schema.tags), schema.tags_delimiter) if schema.tags else [],
        lat=lat,
        lon=lon,
        popularity=popularity,
        features=features,
    )
    return item, problems


def read_items(
    path: Path, schema: ItemSchema, *, fmt: str | None = None, skip_bad_rows: bool = False
) -> ItemsResult:
    """Read every row of `path` (format from `fmt` or the file suffix) into an `Item`.

    Raises `BadRowsError` after reading if any row is bad, unless `skip_bad_rows`; raises `ValueError` at once
    when a mapped column is missing from a CSV header or Parquet schema.
    """
    path = Path(path)
    sink = _BadRowSink(path)
    items: list[Item] = []
    first_line: dict[str, int] = {}
    for line, row in iter_rows(path, schema.columns(), fmt=fmt):
        if isinstance(row, BadRow):
            sink.add([row])
            continue
        item, problems = _to_item(row, schema)
        if item is not None and item.id in first_line:
            problems.append(("id", f"duplicate id {item.id!r} (first seen at line {first_line[item.id]})"))
            item = None
        if item is None:
            sink.add(BadRow(str(path), line, name, message) for name, message in problems)
            continue
        first_line[item.id] = line
        items.append(item)
    sink.finish(skip_bad_rows, what="items")
    return ItemsResult(items=items, skipped=sink.rows, skipped_count=sink.row_count)


class EventSchema(BaseModel):
    """Source columns of a behaviour log; timestamps are epoch seconds (int or float) or ISO-8601 strings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(default="user_id", description="Column with the user id.")
    item_id: str = Field(default="item_id", description="Column with the item id.")
    timestamp: str = Field(default="timestamp", description="Column with the event time.")
    weight: str | None = Field(
        default=None, description="Optional column with a numeric weight (rating, dwell time)."
    )

    def columns(self) -> list[str]:
        return list(dict.fromkeys(c for c in (self.user_id, self.item_id, self.timestamp, self.weight) if c))


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

    def to_arrow(self) -> pa.Table:
        columns = {"user_id": self.user_ids, "item_id": self.item_ids, "timestamp": self.timestamps}
        if self.weights is not None:
            columns["weight"] = self.weights
        return pa.table({name: pa.array(values) for name, values in columns.items()})


def _to_event(row: dict, schema: EventSchema, known: Collection[str] | None) -> tuple[tuple | None, list]:
    problems: list[tuple[str, str]] = []
    user, item = text_value(row.get(schema.user_id)), text_value(row.get(schema.item_id))
    if user is None:
        problems.append(("user_id", f"missing user id (column {schema.user_id!r})"))
    if item is None:
        problems.append(("item_id", f"missing item id (column {schema.item_id!r})"))
    elif known is not None and item not in known:
        problems.append(("item_id", f"unknown item id {item!r}"))
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
    known_item_ids: Collection[str] | None = None,
) -> Events:
    """Read a behaviour log; with `known_item_ids`, events on other items are bad rows."""
    path, schema = Path(path), schema or EventSchema()
    sink = _BadRowSink(path)
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    weights: list[float] = []
    for line, row in iter_rows(path, schema.columns(), fmt=fmt):
        if isinstance(row, BadRow):
            sink.add([row])
            continue
        event, problems = _to_event(row, schema, known_item_ids)
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


def sequences_by_user(events: Events, *, min_length: int = 1) -> dict[str, list[str]]:
    """Each user's item ids in time order (ties keep file order); users with < `min_length` are left out."""
    if len(events) == 0:
        return {}
    order = np.lexsort((events.timestamps, events.user_ids))  # stable: equal times keep file order
    users, items = events.user_ids[order], events.item_ids[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    return {
        str(users[s]): items[s:e].tolist() for s, e in zip(starts, ends, strict=True) if e - s >= min_length
    }


def item_records(items: Iterable[Item]) -> Iterator[tuple[str, dict[str, Any]]]:
    """`(id, record)` pairs for `DocStore.write`."""
    return ((item.id, item.to_record()) for item in items)
