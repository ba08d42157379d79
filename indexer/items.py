"""Catalogue items read from JSONL, CSV or Parquet through a typed column mapping (`schemas.ItemSchema`).

`read_items` turns every row into an `Item`: id, text fields, category, tags, coordinates, popularity, extra
features and, with the `vector` role, the item's own vector (`indexer.item_vectors`). A row that fails
validation (missing or duplicate id, coordinates out of range, a non-numeric number, a bad vector or one of
another dimension than the other items') becomes a `BadRow`; see `indexer.rows` for how bad rows are
reported or skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.item_vectors import dimension_problem, parse_vector
from indexer.rows import BadRow, BadRowSink, iter_rows, parse_float, text_value
from indexer.schemas import ItemSchema

__all__ = ["Item", "ItemsResult", "item_from_fields", "read_items", "written_fields"]


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
    # float32 unit vector supplied with the item (the `vector` role); None: the build encodes the text
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)

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
    vector = None
    if schema.vector is not None:
        vector, problem = parse_vector(row.get(schema.vector), schema.vector)
        if problem is not None:
            problems.append(("vector", problem))
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
        vector=vector,
    )
    return item, problems


def written_fields(schema: ItemSchema) -> list[str]:
    """The keys an item written through the API may carry: the text fields, then the extras the
    collection was built with (category, tags, lat, lon, popularity, its own vector, features by name)."""
    roles = ("category", "tags", "lat", "lon", "popularity", "vector")
    extras = [name for name in roles if getattr(schema, name)]
    return [*schema.text, *extras, *schema.numeric_features, *schema.categorical_features]


def item_from_fields(
    item_id: str, fields: dict[str, Any], schema: ItemSchema
) -> tuple[Item | None, list[tuple[str, str]]]:
    """An item written through the API (`fields` keyed by `written_fields`), checked as a build checks a
    row of the item file: (the item, []) or (None, [(field, problem), ...])."""
    known = written_fields(schema)
    unknown = sorted(set(fields) - set(known), key=list(fields).index)
    if unknown:
        allowed = ", ".join(known)
        return None, [(name, f"not a field of this collection; it has {allowed}") for name in unknown]
    problems = [
        (name, f"must be text, got {type(value).__name__}")
        for name, value in fields.items()
        if name in schema.text and value is not None and not isinstance(value, str)
    ]
    if problems:
        return None, problems
    columns = {**schema.text, **schema.numeric_features, **schema.categorical_features}
    for name in ("category", "tags", "lat", "lon", "popularity", "vector"):
        column = getattr(schema, name)
        if column is not None:
            columns[name] = column
    row = {columns[name]: value for name, value in fields.items()}
    row[schema.id] = item_id
    return _to_item(row, schema)


def _one_dimension(items: list[Item], line_of: dict[str, int], path: Path, sink: BadRowSink) -> list[Item]:
    """`items` whose vectors have the items' dimension (`dimension_problem`); the others go to `sink`."""
    dims = [len(item.vector) if item.vector is not None else 0 for item in items]
    _, odd = dimension_problem(dims, [line_of[item.id] for item in items])
    for i, message in odd:
        sink.add([BadRow(str(path), line_of[items[i].id], "vector", message)])
    left_out = {i for i, _ in odd}
    return [item for i, item in enumerate(items) if i not in left_out]


def read_items(
    path: Path, schema: ItemSchema, *, fmt: str | None = None, skip_bad_rows: bool = False
) -> ItemsResult:
    """Read every row of `path` (format from `fmt` or the file suffix) into an `Item`.

    Raises `BadRowsError` after reading if any row is bad, unless `skip_bad_rows`; raises `ValueError` at once
    when a mapped column is missing from a CSV header or Parquet schema.
    """
    path = Path(path)
    sink = BadRowSink(path)
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
    if schema.vector is not None:
        items = _one_dimension(items, first_line, path, sink)
    sink.finish(skip_bad_rows, what="items")
    return ItemsResult(items=items, skipped=sink.rows, skipped_count=sink.row_count)
