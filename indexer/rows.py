"""Rows of JSONL, CSV and Parquet input files, cell parsing, and the bad-row report every reader shares.

`iter_rows` yields `(line, row)` per record; a record that cannot be read at all comes as a
`BadRow(file, line, field, message)`. Readers (`indexer.items`, `indexer.events`) turn rows into values and
report each problem as a `BadRow` to a `BadRowSink`, which raises one `BadRowsError` listing them once the
whole file was read (it names the CLI's `--skip-bad-rows`), or, with `skip_bad_rows`, keeps the first ones
for the build report.
`line` is the 1-based physical line for JSONL and CSV (the CSV header is line 1) and the 0-based row index
for Parquet.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

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


class BadRowSink:
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
