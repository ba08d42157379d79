"""Build inputs: items from a BEIR folder or a JSONL/CSV/Parquet file, events from a CSV/JSONL/Parquet log.

A BEIR folder is read through the same item reader as any JSONL file, with the fixed mapping
``_id -> id``, ``title`` and ``text`` as text fields, so bad lines and duplicate ids are reported alike. An
item file's roles that the configuration leaves unset are filled from its column names (`indexer.columns`).
Bad rows follow one policy (`BuildConfig.skip_bad_rows`): fail with every problem listed as
``file:line: field: message``, or leave those rows out and report how many.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from indexer.beir import corpus_path
from indexer.columns import ResolvedColumns, read_header, resolve_columns
from indexer.config import BuildConfig, ItemColumns
from indexer.events import Events, read_events
from indexer.items import Item, read_items
from indexer.rows import FORMATS, BadRow

BEIR_SCHEMA = ItemColumns(id="_id", text={"title": "title", "text": "text"})


@dataclass
class ItemInput:
    """The items of one build, and what was left out of them."""

    path: Path
    format: str
    columns: ResolvedColumns
    items: list[Item]
    skipped: list[BadRow] = field(default_factory=list)
    skipped_count: int = 0

    @property
    def schema(self) -> ItemColumns:
        """The column mapping the items were read with."""
        return self.columns.columns


def input_format(corpus: Path) -> str:
    """'beir' for a folder, else the item file format from its suffix (ValueError when unknown)."""
    corpus = Path(corpus)
    if corpus.is_dir():
        corpus_path(corpus)  # FileNotFoundError naming the missing corpus.jsonl
        return "beir"
    if not corpus.exists():
        raise FileNotFoundError(f"corpus {corpus} does not exist")
    fmt = FORMATS.get(corpus.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot read items from {corpus}: give a BEIR folder or a file ending in {sorted(FORMATS)}"
        )
    return fmt


def read_item_input(corpus: Path, config: BuildConfig) -> ItemInput:
    """Read and validate the items of `corpus`; `config.limit` keeps the first N good items.

    An item file's unset roles are filled by column name; a BEIR folder keeps its fixed mapping.
    """
    corpus = Path(corpus)
    fmt = input_format(corpus)
    if fmt == "beir":
        path, columns = corpus_path(corpus), ResolvedColumns(BEIR_SCHEMA, fixed=True)
    else:
        path, columns = corpus, resolve_columns(config.items, read_header(corpus, fmt), corpus)
    result = read_items(
        path, columns.columns, fmt=None if fmt == "beir" else fmt, skip_bad_rows=config.skip_bad_rows
    )
    items = result.items[: config.limit] if config.limit else result.items
    if not items:
        raise ValueError(f"{corpus} holds no documents")
    return ItemInput(path, fmt, columns, items, result.skipped, result.skipped_count)


def read_event_input(path: Path, config: BuildConfig) -> Events:
    """Read the behaviour log (unknown items are kept here; the behaviour stage counts and drops them)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"behaviour log {path} does not exist")
    return read_events(path, config.events, skip_bad_rows=config.skip_bad_rows)


def describe_skipped(what: Path, count: int, first: list[BadRow]) -> str:
    """One line for the build log: how many rows were skipped and the first of them."""
    return f"skipped {count} bad row(s) of {what}" + (f"; first: {first[0]}" if first else "")
