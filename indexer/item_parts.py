"""What the build derives from one item for each part of a version: the text a BM25 field indexes, the
forward-index record, keyword values and numeric columns. The build applies them to every row; the
service applies them to an item written after the build (`retrieval.delta`), so both agree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from indexer.items import Item
from indexer.schemas import ItemSchema

BUILT_IN_COLUMNS = ("lat", "lon", "popularity")


def field_text(item: Item, sources: Sequence[str]) -> str:
    """The text a BM25 field reads: its source fields joined by newlines (all text fields when none)."""
    if not sources:
        return item.text()
    return "\n".join(v for v in (item.fields.get(s, "") for s in sources) if v)


def keyword_values(item: Item, schema: ItemSchema) -> dict[str, list[str]]:
    """The item's values of each keyword filter field: category, tags, categorical features."""
    values: dict[str, list[str]] = {}
    if schema.category is not None:
        values["category"] = [item.category] if item.category else []
    if schema.tags is not None:
        values["tags"] = list(item.tags)
    for name in schema.categorical_features:
        values[name] = [str(item.features[name])] if name in item.features else []
    return values


def numeric_values(item: Item, schema: ItemSchema) -> dict[str, float | None]:
    """The item's value of each numeric column (None: missing): coordinates, popularity, numeric features."""
    values: dict[str, float | None] = {}
    for name in BUILT_IN_COLUMNS:
        if getattr(schema, name) is not None:
            values[name] = getattr(item, name)
    for name in schema.numeric_features:
        feature = item.features.get(name)
        values[name] = None if feature is None else float(feature)
    return values


def record_of(item: Item) -> dict[str, Any]:
    """The docstore record: text fields at the top level, then extras.

    The service shows `title`: with no title field, or an empty one, the first non-empty text field stands
    in (stored only here; BM25 and the encoders read the fields, so that text is not indexed twice).
    """
    record: dict[str, Any] = dict(item.fields)
    title = item.title()
    if title:
        record["title"] = title
    extras = item.to_record()
    for name in ("category", "lat", "lon", "popularity"):
        if name in extras:
            record[name] = extras[name]
    if item.tags:
        record["tags"] = item.tags
    if item.features:
        record["features"] = item.features
    return record
