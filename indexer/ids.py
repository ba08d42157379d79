"""External ids beside a collection's index: ``ids.txt``, one JSON string per line, line i = row i.

Internal row numbers never leave the package; this file is how the build and the online side translate.
A small module of its own, so the online side reads ids without importing the build.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

IDS_FILE = "ids.txt"


def write_ids(directory: Path, ids: Iterable[str]) -> None:
    """Write `ids` in row order; they must be unique (`read_items` turns a repeated id into a bad row)."""
    (Path(directory) / IDS_FILE).write_text("".join(json.dumps(i) + "\n" for i in ids), encoding="utf-8")


def read_ids(directory: Path) -> list[str]:
    """The external ids of a version directory, in row order."""
    with (Path(directory) / IDS_FILE).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]
