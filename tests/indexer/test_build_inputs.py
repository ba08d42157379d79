"""Builds from JSONL, CSV and Parquet item files: column maps and columns by name, keyword filters, numeric
columns, titles, bad rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from indexer.analysis import make_analyzer
from indexer.build import BuildReport, build_collection
from indexer.config import BuildConfig, apply_column_map
from indexer.encoders.torch import Encoder
from indexer.rows import BadRowsError
from retrieval.collection import Collection

NAN = float("nan")
COLUMNS = ("item_id", "name", "body", "cat", "tags", "lat", "lon", "pop", "year", "lang")
ROWS = [
    ("m1", "Running shoes", "Light running shoes for road racing", "sport", "shoes|running",
     48.85, 2.35, 10.0, 2020.0, "en"),
    ("m2", "Trail boots", "Waterproof boots for mountain trails", "sport", "shoes|hiking",
     45.76, 4.83, 5.0, 2019.0, "en"),
    ("m3", "Espresso machine", "Pump espresso machine with a milk frother", "kitchen", "coffee",
     None, None, 7.0, 2021.0, "en"),
    ("m4", "Coffee grinder", "Electric burr grinder for filter coffee", "kitchen", "coffee|electric",
     39.9, 116.4, 3.0, None, "zh"),
    ("m5", "Tea kettle", "Electric kettle for green tea", "kitchen", "tea|electric",
     None, None, None, 2018.0, "en"),
    ("m6", "Yoga mat", "Non-slip mat for yoga and pilates", None, None, None, None, 1.0, 2022.0, None),
]  # fmt: skip
ITEMS: list[dict] = [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]
COLUMN_MAP = [
    "id=item_id",
    "text=title:name,body",
    "category=cat",
    "tags=tags",
    "lat=lat",
    "lon=lon",
    "popularity=pop",
    "numeric.year=year",
    "categorical.lang=lang",
]


def write_items(path: Path, rows: list[dict]) -> Path:
    """Write `rows` in the format named by the suffix of `path` (None -> null / empty cell)."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    elif path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def build_items(
    corpus: Path, root: Path, encoder: Encoder, *, pairs: list[str] = COLUMN_MAP, **settings: object
) -> BuildReport:
    config = apply_column_map(BuildConfig(**settings), pairs)  # type: ignore[arg-type]
    return build_collection(corpus, root, config, encoder=encoder, progress=False)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_each_format_builds_end_to_end(tmp_path: Path, encoder: Encoder, suffix: str) -> None:
    corpus = write_items(tmp_path / f"items{suffix}", ITEMS)
    report = build_items(corpus, tmp_path / "idx", encoder)
    assert report.n_docs == 6 and report.skipped_rows == 0
    collection = Collection.load(tmp_path / "idx", encoder=encoder)
    try:
        assert collection.ids == ["m1", "m2", "m3", "m4", "m5", "m6"]
        assert collection.manifest["params"]["input"]["format"] == suffix.lstrip(".")
        rows, _ = collection.inverted.search(collection.query_terms("espresso frother"), 3)
        assert collection.external_ids_of(rows) == ["m3"]
        record = collection.docstore.get("m1")
        assert record is not None
        assert record["title"] == "Running shoes" and record["category"] == "sport"
        assert record["tags"] == ["shoes", "running"]
        assert record["features"] == {"year": 2020.0, "lang": "en"}

        assert collection.keyword_fields == ["category", "lang", "tags"]
        np.testing.assert_array_equal(collection.keyword_mask("category", "kitchen"), [0, 0, 1, 1, 1, 0])
        np.testing.assert_array_equal(collection.keyword_mask("tags", ["shoes"]), [1, 1, 0, 0, 0, 0])
        np.testing.assert_array_equal(collection.keyword_mask("tags", ["tea", "coffee"]), [0, 0, 1, 1, 1, 0])
        np.testing.assert_array_equal(collection.keyword_mask("lang", ["zh"]), [0, 0, 0, 1, 0, 0])
        assert not collection.keyword_mask("category", ["garden"]).any()
        with pytest.raises(ValueError, match="unknown keyword field 'color'"):
            collection.keyword_mask("color", ["red"])

        assert collection.numeric_names == ["lat", "lon", "popularity", "year"]
        np.testing.assert_array_equal(collection.numeric("lat"), [48.85, 45.76, NAN, 39.9, NAN, NAN])
        np.testing.assert_array_equal(collection.numeric("year"), [2020, 2019, 2021, NAN, 2018, 2022])
        np.testing.assert_array_equal(collection.popularity, [10, 5, 7, 3, NAN, 1])
        w2v = collection.manifest["params"]["word2vec"]
        assert w2v["trained"] and w2v["weighting"] == "sif" and w2v["params"]["vector_size"] == 100
    finally:
        collection.close()


def test_column_map_equals_toml_config(tmp_path: Path) -> None:
    toml = tmp_path / "build.toml"
    toml.write_text(
        "[items]\nid = 'item_id'\ncategory = 'cat'\nnumeric_features = {year = 'year'}\n"
        "[items.text]\ntitle = 'name'\nbody = 'body'\n"
        "[events]\nuser_id = 'userId'\n"
    )
    from_file = BuildConfig.from_toml(toml)
    from_map = apply_column_map(
        BuildConfig(),
        ["id=item_id", "category=cat", "numeric.year=year", "text=title:name,body", "user_id=userId"],
    )
    assert from_file == from_map
    assert from_map.items.text == {"title": "name", "body": "body"}
    assert from_map.events.user_id == "userId" and from_map.events.item_id == "item_id"


def test_unknown_keys_and_roles_are_refused(tmp_path: Path) -> None:
    toml = tmp_path / "build.toml"
    toml.write_text("[items]\nidentifier = 'x'\n")
    with pytest.raises(ValueError, match="identifier"):
        BuildConfig.from_toml(toml)
    with pytest.raises(ValueError, match=r"unknown column role 'colour'.*numeric\.NAME"):
        apply_column_map(BuildConfig(), ["colour=c"])
    with pytest.raises(ValueError, match="ROLE=COLUMN"):
        apply_column_map(BuildConfig(), ["id"])
    with pytest.raises(ValueError, match="reserved"):
        apply_column_map(BuildConfig(), ["numeric.tags=t"])


def test_a_mapped_column_missing_from_the_file_is_named(tmp_path: Path, encoder: Encoder) -> None:
    corpus = write_items(tmp_path / "items.csv", ITEMS)
    with pytest.raises(ValueError, match=r"\['nope'\] not found"):
        build_items(corpus, tmp_path / "idx", encoder, pairs=[*COLUMN_MAP, "category=nope"])


def _bad_rows() -> list[dict]:
    rows = [dict(row) for row in ITEMS]
    rows[2]["lat"], rows[2]["lon"] = "north", 2.0  # line 4 of the CSV (the header is line 1)
    rows[4]["item_id"] = None  # line 6
    return rows


def test_bad_rows_fail_the_build_with_file_line_and_field(tmp_path: Path, encoder: Encoder) -> None:
    corpus = write_items(tmp_path / "items.csv", _bad_rows())
    with pytest.raises(BadRowsError) as caught:
        build_items(corpus, tmp_path / "idx", encoder)
    message = str(caught.value)
    assert f"{corpus}:4: lat: 'north' is not a finite number" in message
    assert f"{corpus}:6: id: missing id" in message
    assert not (tmp_path / "idx" / "CURRENT").exists()


def test_skip_bad_rows_builds_the_rest_and_reports_them(tmp_path: Path, encoder: Encoder) -> None:
    corpus = write_items(tmp_path / "items.jsonl", _bad_rows())
    report = build_items(corpus, tmp_path / "idx", encoder, skip_bad_rows=True)
    assert (report.n_docs, report.skipped_rows) == (4, 2)
    assert any("skipped 2 bad row(s)" in m and ":3: lat" in m for m in report.messages)  # JSONL: no header
    collection = Collection.load(tmp_path / "idx", encoder=encoder)
    try:
        assert collection.ids == ["m1", "m2", "m4", "m6"]
        assert collection.manifest["params"]["input"]["skipped_rows"] == 2
        assert collection.manifest["params"]["input"]["skipped_examples"][0].startswith(f"{corpus}:3: lat")
    finally:
        collection.close()


SHOPS = [
    {"id": "s1", "title": "Corner bakery", "text": "Sourdough bread and croissants", "lat": 48.85,
     "lon": 2.35, "category": "bakery", "popularity": 12},
    {"id": "s2", "title": "Harbour fish market", "text": "Fresh fish and oysters", "lat": 43.3,
     "lon": 5.37, "category": "market", "popularity": 7},
    {"id": "s3", "title": "Night owl coffee", "text": "Espresso until midnight", "lat": None, "lon": None,
     "category": "cafe", "popularity": None},
]  # fmt: skip
NO_WORD2VEC = {"word2vec": {"enabled": False}}  # what these tests check does not need it


def test_a_file_without_config_maps_its_columns_by_name(tmp_path: Path, encoder: Encoder) -> None:
    corpus = write_items(tmp_path / "shops.csv", SHOPS)
    logged: list[str] = []
    config = BuildConfig.model_validate(NO_WORD2VEC)
    build_collection(corpus, tmp_path / "idx", config, encoder=encoder, progress=False, log=logged.append)
    assert (
        "columns: id=id, text=[title, text], lat=lat, lon=lon, category=category, popularity=popularity "
        "(by name; --map ROLE=COLUMN overrides, --map ROLE= turns one off)"
    ) in logged
    collection = Collection.load(tmp_path / "idx", encoder=encoder)
    try:
        params = collection.manifest["params"]
        items = params["config"]["items"]
        assert (items["id"], items["text"]) == ("id", {"title": "title", "text": "text"})
        assert [items[role] for role in ("lat", "lon", "category", "tags", "popularity")] == [
            "lat",
            "lon",
            "category",
            None,
            "popularity",
        ]
        assert params["input"]["columns_by_name"] == ["id", "text", "lat", "lon", "category", "popularity"]
        assert collection.numeric_names == ["lat", "lon", "popularity"]
        np.testing.assert_array_equal(collection.numeric("lat"), [48.85, 43.3, NAN])
        np.testing.assert_array_equal(collection.popularity, [12, 7, NAN])
        assert collection.keyword_fields == ["category"]
        np.testing.assert_array_equal(collection.keyword_mask("category", "cafe"), [0, 0, 1])
        assert collection.docstore.get("s2") == {
            "title": "Harbour fish market",
            "text": "Fresh fish and oysters",
            "category": "market",
            "lat": 43.3,
            "lon": 5.37,
            "popularity": 7.0,
        }
    finally:
        collection.close()


def test_without_a_title_column_the_first_text_field_is_the_title(tmp_path: Path, encoder: Encoder) -> None:
    rows = [
        {"id": "p1", "description": "Wood-fired pizza in the old town", "name": "Luigi pizzeria"},
        {"id": "p2", "description": "Noodle soup and dumplings", "name": ""},  # no name: the next text field
        {"id": "p3", "description": "Tapas bar", "name": "El Rincon"},
    ]
    corpus = write_items(tmp_path / "places.jsonl", rows)
    build_collection(corpus, tmp_path / "idx", BuildConfig.model_validate(NO_WORD2VEC), encoder=encoder,
                     progress=False)  # fmt: skip
    collection = Collection.load(tmp_path / "idx", encoder=encoder)
    try:
        assert collection.manifest["params"]["config"]["items"]["text"] == {
            "name": "name",
            "description": "description",
        }
        records = collection.docstore.get_many(["p1", "p2", "p3"])
        assert [r["title"] for r in records if r] == [
            "Luigi pizzeria",
            "Noodle soup and dumplings",
            "El Rincon",
        ]
        assert records[0] == {
            "name": "Luigi pizzeria",
            "description": "Wood-fired pizza in the old town",
            "title": "Luigi pizzeria",
        }
        analyzer = make_analyzer("english")  # BM25 indexed name and description once each
        lengths = [len(analyzer(f"{row['name']}\n{row['description']}")) for row in rows]
        assert collection.inverted.fields[0].index.params["avg_doc_len"] == pytest.approx(np.mean(lengths))
    finally:
        collection.close()


def test_a_bad_row_names_the_flag_that_skips_it(tmp_path: Path, encoder: Encoder) -> None:
    rows = [dict(row) for row in SHOPS]
    rows[1]["popularity"] = "many"
    corpus = write_items(tmp_path / "shops.jsonl", rows)
    with pytest.raises(BadRowsError, match=r"pass --skip-bad-rows \(skip_bad_rows = true in a config\)"):
        build_collection(corpus, tmp_path / "idx", BuildConfig(), encoder=encoder, progress=False)
