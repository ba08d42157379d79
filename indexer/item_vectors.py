"""Vectors supplied with the items (the `vector` role, ``--map vector=COLUMN``), read instead of encoding.

A user with their own embedding pipeline puts each item's vector in a column; the build then indexes those
vectors in the dense ANN index and loads no encoder. What a cell may hold:

- JSONL: a JSON array of numbers, ``"emb": [0.12, -0.5, 3]``;
- Parquet: a list (or fixed-size list) column of floats or integers;
- CSV: the numbers separated by commas, or else by whitespace, optionally inside ``[ ]`` (so a JSON array
  written into a cell reads the same): ``0.12 -0.5 3``, ``0.12,-0.5,3`` or ``[0.12, -0.5, 3]``. A comma is
  always a separator, never a decimal mark, and an empty value between two commas is an error. Any string
  cell, in any format, is read this way.

Every item must have one; every value must be a finite number; all vectors have one dimension (the one most
items have, so a single odd row is the one reported); and none may be the zero vector. A row breaking one of
these rules is a bad row (`indexer.rows.BadRow`, field ``vector``), reported or skipped like any other. The
build searches by cosine: each vector is scaled to unit length (in float64, then stored as float32).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ALLOWED", "dimension_problem", "parse_vector", "vector_matrix"]

ALLOWED = (
    "a non-empty list of finite numbers (a JSON array, a Parquet list, or in CSV the numbers separated "
    "by commas or spaces), not all zero"
)
SHOWN_CHARS = 40  # of a bad cell, in a message


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _split(text: str) -> tuple[list[str], str | None]:
    """The number strings of a text cell, or a problem."""
    body = text.strip()
    if body.startswith("[") or body.endswith("]"):
        if not (body.startswith("[") and body.endswith("]")):
            return [], f"unbalanced brackets in {_shown(text)}"
        body = body[1:-1].strip()
    if not body:
        return [], "empty vector"
    if "," not in body:
        return body.split(), None
    parts = [part.strip() for part in body.split(",")]
    empty = next((i for i, part in enumerate(parts) if not part), None)
    if empty is not None:
        return [], f"number {empty + 1} of {len(parts)} is empty (two commas in a row, or a trailing comma)"
    return parts, None


def _not_a_number(parts: Sequence[str]) -> str:
    """Why the parts of a text cell, which numpy would not read, are no numbers: the first that is not."""
    for i, part in enumerate(parts):
        try:
            float(part)
        except ValueError:
            return f"number {i + 1} of {len(parts)} ({_shown(part)}) is not a number"
    return f"{_shown(' '.join(parts))} are not numbers"


def _not_numbers(values: Sequence[Any]) -> str:
    """Why a list cell, which numpy would not read as a flat list of numbers, is none: its first element
    that is no number (a string, a bool, a null, a nested list)."""
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            kind = "null" if value is None else f"{type(value).__name__} {_shown(value)}"
            return f"number {i + 1} of {len(values)} is {kind}, not a number"
    return f"{_shown(values)} is no flat list of numbers"


def _numbers(value: Any) -> tuple[np.ndarray | None, str | None]:
    """The cell as float64 numbers, or a problem."""
    if isinstance(value, str):
        parts, problem = _split(value)
        if problem is not None:
            return None, problem
        try:
            return np.array(parts, dtype=np.float64), None
        except ValueError:
            return None, _not_a_number(parts)
    if isinstance(value, list | tuple | np.ndarray):
        if len(value) == 0:
            return None, "empty vector"
        try:
            array = np.asarray(value)
        except ValueError:  # ragged nesting
            return None, _not_numbers(list(value))
        if array.ndim != 1 or array.dtype.kind not in "iuf":
            return None, _not_numbers(list(value))
        return array.astype(np.float64), None
    return None, f"{type(value).__name__} {_shown(value)} is not a vector"


def parse_vector(value: Any, column: str) -> tuple[np.ndarray | None, str | None]:
    """A cell of the vector column as a float32 unit vector, or None and the problem (naming `column` and
    what is allowed). A missing cell (None) is a problem too: every item needs a vector."""
    if value is None:
        return None, f"missing vector (column {column!r}); every item needs {ALLOWED}"
    numbers, problem = _numbers(value)
    if numbers is not None:
        problem = _value_problem(numbers)
    if problem is not None or numbers is None:
        return None, f"{problem} (column {column!r}); expected {ALLOWED}"
    unit = numbers / math.sqrt(float(numbers @ numbers))
    return unit.astype(np.float32), None


def _value_problem(numbers: np.ndarray) -> str | None:
    finite = np.isfinite(numbers)
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        return f"number {first + 1} of {len(numbers)} is {numbers[first]}"
    large = np.abs(numbers) > np.finfo(np.float32).max
    if large.any():
        first = int(np.flatnonzero(large)[0])
        return f"number {first + 1} of {len(numbers)} ({numbers[first]:g}) is beyond float32's range"
    if not numbers.any():
        return "the zero vector, which has no direction"
    return None


def dimension_problem(dims: Sequence[int], lines: Sequence[int]) -> tuple[int, list[tuple[int, str]]]:
    """The items' dimension (the most common; a tie goes to the first seen) and, for each item of another,
    its position in `dims` and the problem. `lines` are the items' input lines, for the message."""
    if not dims:
        return 0, []
    counts = Counter(dims)
    top = max(counts.values())
    expected = next(dim for dim in dims if counts[dim] == top)
    example = lines[dims.index(expected)]
    wrong = "{} numbers, but the items' vectors have {} (as at line {}); every vector needs {}"
    return expected, [
        (i, wrong.format(dim, expected, example, expected)) for i, dim in enumerate(dims) if dim != expected
    ]


def vector_matrix(vectors: Sequence[np.ndarray | None]) -> np.ndarray:
    """The unit vectors (of `parse_vector`) stacked into one float32 matrix, one row per item; ValueError
    when an item has none (its row would be another item's)."""
    missing = next((row for row, vector in enumerate(vectors) if vector is None), None)
    if missing is not None:
        raise ValueError(
            f"item row {missing} has no vector; every item of a build of supplied vectors needs one"
        )
    return np.stack(vectors).astype(np.float32, copy=False)  # type: ignore[arg-type]  # no None is left
