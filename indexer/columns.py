"""Columns by convention: an item file's columns fill the roles the user left unmapped, by their names.

A build given no column mapping reads the file's header (the CSV header line, the Parquet schema, or the
union of keys of the first `HEADER_SAMPLE_ROWS` JSONL lines) and fills each role that neither the TOML
config nor `--map` set from the first column whose name, compared case-insensitively, is one of the role's
names. The mapping keeps the file's spelling of the column.

==========  =====================================================================
role        column names
==========  =====================================================================
id          _id, id, item_id, doc_id (the first found)
text        title, name, text, body, content, description (each found is a text field, in this order;
            the field is named by the lower-case name, so the first one serves as the hit's title)
lat, lon    lat, latitude / lon, lng, long, longitude (both or neither)
category    category
tags        tags
popularity  popularity
==========  =====================================================================

A role set explicitly, to a column or turned off (`--map lat=`), is left as it is; a column set explicitly
for one role is not guessed into another.

The `vector` role (the items' own embeddings, `indexer.item_vectors`) is never filled by name: supplied
vectors replace the build's encoder, and the service then cannot embed text queries into their space, so
that is the user's choice to make. A column named like one (vector, vectors, embedding, embeddings, emb)
only earns a note in the log naming the `--map` that would use it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from indexer.config import ItemColumns

__all__ = ["HEADER_SAMPLE_ROWS", "ResolvedColumns", "read_header", "resolve_columns"]

HEADER_SAMPLE_ROWS = 1000  # JSONL lines whose keys make up the header
ID_NAMES = ("_id", "id", "item_id", "doc_id")
TEXT_NAMES = ("title", "name", "text", "body", "content", "description")
LAT_NAMES = ("lat", "latitude")
LON_NAMES = ("lon", "lng", "long", "longitude")
SINGLE_NAMES: dict[str, tuple[str, ...]] = {
    "category": ("category",),
    "tags": ("tags",),
    "popularity": ("popularity",),
}
VECTOR_NAMES = ("vector", "vectors", "embedding", "embeddings", "emb")  # only noted, never mapped by name
SHOWN_ROLES = ("lat", "lon", "category", "tags", "popularity", "vector")  # after id and text, in the log line
MAP_HINT = "--map ROLE=COLUMN overrides, --map ROLE= turns one off"


@dataclass(frozen=True)
class ResolvedColumns:
    """The column mapping a build uses, which roles came from the column names, and notes for the log."""

    columns: ItemColumns
    by_name: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    fixed: bool = False  # a BEIR folder's mapping, which no configuration changes

    def describe(self) -> str:
        """One log line, e.g. ``columns: id=id, text=[title, text], lat=lat, lon=lon (by name; ...)``."""
        mapping = ", ".join(_mapping_parts(self.columns))
        if self.fixed:
            return f"columns: {mapping} (a BEIR folder's fixed mapping)"
        mapped = [part.split("=")[0] for part in _mapping_parts(self.columns)]
        if self.by_name and set(mapped) <= set(self.by_name):
            origin = "by name"
        elif self.by_name:
            origin = "by name: " + ", ".join(self.by_name)
        else:
            origin = "as configured"
        return f"columns: {mapping} ({origin}; {MAP_HINT})"


def _mapping_parts(columns: ItemColumns) -> list[str]:
    fields = (column if name == column else f"{name}:{column}" for name, column in columns.text.items())
    parts = [f"id={columns.id}", f"text=[{', '.join(fields)}]"]
    roles = [(role, getattr(columns, role)) for role in SHOWN_ROLES]
    parts += [f"{role}={column}" for role, column in roles if column is not None]
    parts += [f"numeric.{name}={column}" for name, column in columns.numeric_features.items()]
    parts += [f"categorical.{name}={column}" for name, column in columns.categorical_features.items()]
    return parts


def read_header(path: Path, fmt: str) -> list[str]:
    """Column names of an item file: the CSV header, the Parquet schema, or the keys of the first JSONL rows.

    `fmt` is 'csv', 'parquet' or 'jsonl'; unreadable JSONL lines are passed over (the reader reports them).
    """
    path = Path(path)
    if fmt == "csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle), [])
    if fmt == "parquet":
        return list(pq.read_schema(path).names)
    if fmt == "jsonl":
        with path.open(encoding="utf-8-sig") as lines:
            return _jsonl_keys(islice(lines, HEADER_SAMPLE_ROWS))
    raise ValueError(f"cannot read the columns of {path}: format {fmt!r}; choose csv, jsonl or parquet")


def _jsonl_keys(lines: Iterable[str]) -> list[str]:
    keys: dict[str, None] = {}
    for line in lines:
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            keys.update(dict.fromkeys(row))
    return list(keys)


def _matches(header: Sequence[str], names: Sequence[str], taken: set[str]) -> list[str]:
    """Header columns named (case-insensitively) like one of `names`, in the order of `names`."""
    found: list[str] = []
    for name in names:
        same = [column for column in header if column.lower() == name and column not in taken]
        found += sorted(same, key=lambda column: column != name)  # the exact spelling first
    return found


def _explicit_columns(columns: ItemColumns) -> set[str]:
    """Columns the user mapped to some role; convention does not reuse them."""
    taken: set[str] = set()
    for value in columns.model_dump(include=columns.model_fields_set - {"tags_delimiter"}).values():
        if isinstance(value, str):
            taken.add(value)
        elif isinstance(value, dict):
            taken.update(value.values())
    return taken


def _missing_role(role: str, names: Sequence[str], source: str, header: Sequence[str]) -> ValueError:
    return ValueError(
        f"{source}: no {role} column; name one with --map {role}=COLUMN (or [items] {role} in a config), "
        f"or name the column one of {list(names)}; the file has columns {list(header)}"
    )


def _single(
    header: Sequence[str], role: str, names: Sequence[str], taken: set[str]
) -> tuple[str | None, str]:
    """The column filling `role` and a note when several columns would."""
    found = _matches(header, names, taken)
    if len(found) > 1:
        note = f"note: columns {found} could be the {role}; using {found[0]!r} (--map {role}=COLUMN)"
        return found[0], note
    return (found[0] if found else None), ""


def _coordinates(header: Sequence[str], taken: set[str]) -> tuple[dict[str, str], str]:
    lat, lon = _matches(header, LAT_NAMES, taken), _matches(header, LON_NAMES, taken)
    if lat and lon:
        return {"lat": lat[0], "lon": lon[0]}, ""
    if lat or lon:
        present, absent = ("latitude", "longitude") if lat else ("longitude", "latitude")
        names = LON_NAMES if lat else LAT_NAMES
        return {}, (
            f"note: column {(lat or lon)[0]!r} looks like the {present} but no column is named like the "
            f"{absent} ({', '.join(names)}); coordinates are left out (--map lat=COLUMN --map lon=COLUMN)"
        )
    return {}, ""


def resolve_columns(
    columns: ItemColumns, header: Sequence[str], source: Path | str = "the item file"
) -> ResolvedColumns:
    """`columns` with every role it does not set explicitly filled from `header` by name (see the module).

    Raises ValueError naming the accepted names and the file's columns when no column can serve as the id
    or as text. An empty header (an empty file) leaves `columns` as they are, for the reader to report.
    """
    chosen = columns.model_fields_set
    if not header:
        return ResolvedColumns(columns)
    taken = _explicit_columns(columns)
    updates: dict[str, Any] = {}
    notes: list[str] = []
    if "id" not in chosen:
        updates["id"], note = _single(header, "id", ID_NAMES, taken)
        if updates["id"] is None:
            raise _missing_role("id", ID_NAMES, str(source), header)
        notes.append(note)
    if "text" not in chosen:
        found = {name: _matches(header, (name,), taken) for name in TEXT_NAMES}
        updates["text"] = {name: matches[0] for name, matches in found.items() if matches}
        if not updates["text"]:
            raise _missing_role("text", TEXT_NAMES, str(source), header)
    if not {"lat", "lon"} & chosen:
        coordinates, note = _coordinates(header, taken)
        updates.update(coordinates)
        notes.append(note)
    for role, names in SINGLE_NAMES.items():
        if role not in chosen:
            column, note = _single(header, role, names, taken)
            notes.append(note)
            if column is not None:
                updates[role] = column
    if "vector" not in chosen:
        notes += [
            f"note: column {column!r} looks like item vectors; --map vector={column} indexes them instead of "
            "encoding the text"
            for column in _matches(header, VECTOR_NAMES, taken)
        ]
    resolved = ItemColumns.model_validate({**columns.model_dump(include=chosen), **updates})
    by_name = tuple(role for role in ("id", "text", *SHOWN_ROLES) if role in updates)
    return ResolvedColumns(resolved, by_name, tuple(note for note in notes if note))
