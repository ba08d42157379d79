"""Items that carry their own vectors (`--map vector=COLUMN`): the cell forms and the bad rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from indexer.build import BuildReport, build_collection
from indexer.columns import resolve_columns
from indexer.config import BuildConfig, ItemColumns, apply_column_map
from indexer.item_vectors import parse_vector

DIM = 8
TOPICS = {
    "pizza": "wood fired pizza with mozzarella",
    "sushi": "fresh sushi and sashimi",
    "books": "second hand books and novels",
    "coffee": "espresso coffee and pastries",
}
PER_TOPIC = 6


def topic_rows(seed: int = 0) -> list[dict]:
    """Six items per topic, each vector its topic's centre plus a little noise (so neighbours share a topic);
    the vectors are not of unit length."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(TOPICS), DIM)) * 3
    return [
        {
            "id": f"{topic}-{i}",
            "title": f"{topic.title()} {i}",
            "text": text,
            "emb": (centres[t] + 0.1 * rng.normal(size=DIM)).tolist(),
        }
        for t, (topic, text) in enumerate(TOPICS.items())
        for i in range(PER_TOPIC)
    ]


def write_vector_items(path: Path, rows: list[dict]) -> Path:
    """`rows` in the format of `path`'s suffix: JSONL arrays, CSV cells of space-separated numbers (a str
    cell is written as is), a Parquet list<float> column."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                cell = row["emb"]
                writer.writerow({**row, "emb": cell if isinstance(cell, str) else " ".join(map(repr, cell))})
    else:
        emb = pa.array([row["emb"] for row in rows], type=pa.list_(pa.float32()))
        table = pa.Table.from_pylist([{k: v for k, v in row.items() if k != "emb"} for row in rows])
        pq.write_table(table.append_column("emb", emb), path)
    return path


def build_vectors(
    corpus: Path, root: Path, pairs: tuple[str, ...] = ("vector=emb",), **settings: object
) -> BuildReport:
    config = apply_column_map(BuildConfig(**settings), pairs)  # type: ignore[arg-type]
    return build_collection(corpus, root, config, progress=False)


# ------------------------------------------------------------------------------------------- cell forms
@pytest.mark.parametrize(
    "cell",
    [[3, 0, 4], [3.0, 0.0, 4.0], "3 0 4", " 3\t0  4 ", "3,0,4", "3, 0, 4", "[3, 0, 4]", "[3 0 4]", (3, 0, 4)],
)
def test_each_cell_form_reads_as_a_unit_vector(cell: object) -> None:
    vector, problem = parse_vector(cell, "emb")
    assert problem is None and vector is not None
    assert vector.dtype == np.float32
    np.testing.assert_allclose(vector, [0.6, 0.0, 0.8], rtol=1e-6)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (None, "missing vector (column 'emb')"),
        ("1 abc 3", "number 2 of 3 ('abc') is not a number"),
        ("1,,3", "number 2 of 3 is empty"),
        ("1 2,", "number 2 of 2 is empty"),
        ("1,5 2,5", "number 2 of 3 ('5 2') is not a number"),  # a comma is never a decimal mark
        ("[1 2", "unbalanced brackets"),
        ("[]", "empty vector"),
        ([], "empty vector"),
        ([1.0, None], "number 2 of 2 is null"),
        ([1.0, "2"], "number 2 of 2 is str '2'"),
        ([True, False], "number 1 of 2 is bool True"),
        ([[1.0, 2.0]], "number 1 of 1 is list"),
        ([1.0, float("nan")], "number 2 of 2 is nan"),
        ("1 inf", "number 2 of 2 is inf"),
        ([1.0, 1e39], "number 2 of 2 (1e+39) is beyond float32's range"),
        ([0, 0.0, 0], "the zero vector"),
        (3.5, "float 3.5 is not a vector"),
        ({"x": 1}, "dict {'x': 1} is not a vector"),
    ],
)
def test_bad_cells_say_what_is_wrong_and_what_is_allowed(cell: object, expected: str) -> None:
    vector, problem = parse_vector(cell, "emb")
    assert vector is None and problem is not None
    assert expected in problem
    assert "a non-empty list of finite numbers" in problem and "column 'emb'" in problem


def test_the_vector_role_is_never_filled_by_name_only_noted() -> None:
    header = ["id", "title", "embedding"]
    resolved = resolve_columns(ItemColumns(), header)
    assert resolved.columns.vector is None
    note = "note: column 'embedding' looks like item vectors; --map vector=embedding indexes them"
    assert note in " ".join(resolved.notes)
    mapped = resolve_columns(ItemColumns(vector="embedding"), header)
    assert mapped.columns.vector == "embedding" and not mapped.notes
    assert "vector=embedding" in mapped.describe()
