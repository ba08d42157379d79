"""Items that carry their own vectors (`--map vector=COLUMN`): the cell forms, the bad rows, and builds that
index those vectors without loading an encoder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import indexer.build
from indexer.ann import load_index
from indexer.build import BuildReport, build_collection
from indexer.columns import resolve_columns
from indexer.config import BuildConfig, ItemColumns, apply_column_map
from indexer.item_vectors import parse_vector
from indexer.items import read_items
from indexer.manifests import read_collection_params
from indexer.rows import BadRowsError
from indexer.versions import resolve_artifact

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


@pytest.fixture(autouse=True)
def _no_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """A build of supplied vectors must not load a model."""

    def refuse(config: BuildConfig, root: Path, spread: object = None) -> None:
        raise AssertionError("a build of supplied vectors asked for an encoder")

    monkeypatch.setattr(indexer.build, "encoder_for", refuse)


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


# --------------------------------------------------------------------------------------------- builds
@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_each_format_indexes_its_vectors_without_an_encoder(tmp_path: Path, suffix: str) -> None:
    rows = topic_rows()
    corpus = write_vector_items(tmp_path / f"items{suffix}", rows)
    messages: list[str] = []
    config = apply_column_map(BuildConfig(), ["vector=emb"])
    report = build_collection(corpus, tmp_path / "idx", config, progress=False, log=messages.append)
    assert report.n_docs == len(rows) and report.skipped_rows == 0
    assert f"encoder: supplied vectors (dim {DIM}) from column emb" in messages
    assert "vectors..." in messages and "encode..." not in messages
    version = resolve_artifact(tmp_path / "idx")
    params = read_collection_params(version)
    assert params.encoder.kind == params.config.encoder == "supplied"
    assert params.config.items.vector == "emb"
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["params"]["encoder"] == {
        "kind": "supplied",
        "column": "emb",
        "dim": DIM,
        "normalized": True,
        "choice": f"encoder: supplied vectors (dim {DIM}) from column emb",
    }
    assert "vectors" in manifest["params"]["seconds"] and "encode" not in manifest["params"]["seconds"]
    expected = np.array([row["emb"] for row in rows], dtype=np.float64)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)  # cosine: unit length
    stored = load_index(version / "dense").reconstruct(np.arange(len(rows)))
    np.testing.assert_allclose(stored, expected, atol=1e-6)


@pytest.mark.parametrize(
    "kind", [pa.list_(pa.float64(), DIM), pa.list_(pa.int32()), pa.large_list(pa.float32())], ids=str
)
def test_parquet_list_columns_of_any_number_type_read_alike(tmp_path: Path, kind: pa.DataType) -> None:
    vectors = [[i + 1, 0, 0, 0, 0, 0, 0, -(i + 1)] for i in range(3)]
    table = pa.table({"id": ["a", "b", "c"], "title": ["A", "B", "C"], "emb": pa.array(vectors, type=kind)})
    pq.write_table(table, tmp_path / "items.parquet")
    schema = ItemColumns(id="id", text=["title"], vector="emb")
    items = read_items(tmp_path / "items.parquet", schema).items
    half = np.sqrt(0.5)
    for item in items:
        assert item.vector is not None
        np.testing.assert_allclose(item.vector, [half, 0, 0, 0, 0, 0, 0, -half], rtol=1e-6)


def test_csv_cells_may_be_comma_separated_or_json_arrays(tmp_path: Path) -> None:
    rows = topic_rows()
    for i, row in enumerate(rows):
        numbers = [repr(x) for x in row["emb"]]
        row["emb"] = ",".join(numbers) if i % 2 else "[" + ", ".join(numbers) + "]"
    corpus = write_vector_items(tmp_path / "items.csv", rows)
    assert build_vectors(corpus, tmp_path / "idx").n_docs == len(rows)


def test_bad_vector_rows_name_file_line_and_field_unless_skipped(tmp_path: Path) -> None:
    rows = topic_rows()
    rows[1]["emb"] = rows[1]["emb"][:-1]  # line 2: one number short
    rows[4]["emb"] = [*rows[4]["emb"][:3], "x", *rows[4]["emb"][4:]]  # line 5
    rows[7]["emb"] = [float("nan"), *rows[7]["emb"][1:]]  # line 8
    corpus = write_vector_items(tmp_path / "items.jsonl", rows)
    with pytest.raises(BadRowsError) as failed:
        build_vectors(corpus, tmp_path / "idx")
    message = str(failed.value)
    assert "3 bad row(s)" in message
    assert f"{corpus}:5: vector: number 4 of 8 is str 'x', not a number (column 'emb'); expected" in message
    assert f"{corpus}:8: vector: number 1 of 8 is nan (column 'emb')" in message
    assert f"{corpus}:2: vector: 7 numbers, but the items' vectors have 8 (as at line 1)" in message
    assert not (tmp_path / "idx" / "CURRENT").exists()

    report = build_vectors(corpus, tmp_path / "idx", skip_bad_rows=True)
    assert (report.n_docs, report.skipped_rows) == (len(rows) - 3, 3)


def test_the_dimension_is_the_one_most_items_have(tmp_path: Path) -> None:
    rows = topic_rows()
    rows[0]["emb"] = [1.0, 2.0, 3.0]  # the first row is the odd one out, and the one reported
    corpus = write_vector_items(tmp_path / "items.csv", rows)
    with pytest.raises(BadRowsError) as failed:
        build_vectors(corpus, tmp_path / "idx")
    assert failed.value.row_count == 1
    assert f"{corpus}:2: vector: 3 numbers, but the items' vectors have 8 (as at line 3)" in str(failed.value)


def test_a_missing_vector_is_a_bad_row(tmp_path: Path) -> None:
    rows = topic_rows()
    rows[2]["emb"] = ""  # an empty CSV cell
    corpus = write_vector_items(tmp_path / "items.csv", rows)
    with pytest.raises(BadRowsError, match=r":4: vector: missing vector \(column 'emb'\)"):
        build_vectors(corpus, tmp_path / "idx")


def test_encoder_settings_that_contradict_the_vectors_are_refused(tmp_path: Path) -> None:
    corpus = write_vector_items(tmp_path / "items.jsonl", topic_rows())
    with pytest.raises(ValueError, match=r"carry their own vectors \(column 'emb'\).*sets encoder 'torch'"):
        build_vectors(corpus, tmp_path / "idx", encoder="torch")
    with pytest.raises(ValueError, match=r"encoder 'supplied' indexes the items' own vectors.*--map vector="):
        build_vectors(corpus, tmp_path / "idx", pairs=(), encoder="supplied")
    assert build_vectors(corpus, tmp_path / "idx", encoder="supplied").n_docs == len(topic_rows())
