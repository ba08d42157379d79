"""Item and behaviour readers: JSONL, CSV and Parquet, validation with line numbers, MovieLens."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from indexer.events import read_events
from indexer.items import read_items
from indexer.rows import BadRowsError, parse_timestamp
from indexer.schemas import EventSchema, ItemSchema

MOVIELENS = Path(__file__).resolve().parents[2] / "data" / "movielens"

SCHEMA = ItemSchema(
    id="id",
    text={"title": "name", "body": "description"},
    category="cat",
    tags="tags",
    lat="lat",
    lon="lon",
    popularity="pop",
    numeric_features={"price": "price"},
    categorical_features={"brand": "brand"},
)


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _row(**values: object) -> str:
    return json.dumps(values, ensure_ascii=False)


def test_jsonl_items_are_typed(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "items.jsonl",
        [
            _row(
                id=1,
                name="Coffee shop",
                description="Espresso",
                cat="food",
                tags=["cafe", " wifi "],
                lat="39.9",
                lon=116.4,
                pop=12,
                price="3.5",
                brand="Acme",
            ),
            "",
            _row(id="b", name="北京烤鸭", tags="duck|roast|"),
        ],
    )
    result = read_items(path, SCHEMA)
    first, second = result.items
    assert (first.id, first.fields, first.category, first.tags) == (
        "1",
        {"title": "Coffee shop", "body": "Espresso"},
        "food",
        ["cafe", "wifi"],
    )
    assert (first.lat, first.lon, first.popularity) == (39.9, 116.4, 12.0)
    assert first.features == {"price": 3.5, "brand": "Acme"}
    assert (second.id, second.fields, second.tags, second.lat) == (
        "b",
        {"title": "北京烤鸭", "body": ""},
        ["duck", "roast"],
        None,
    )
    assert second.text() == "北京烤鸭"
    assert result.items[0].to_record()["lat"] == 39.9
    assert result.skipped_count == 0


JSONL_WITH_BAD_ROWS = [
    _row(id="a", name="ok"),  # line 1
    "{not json",  # line 2
    _row(name="no id"),  # line 3
    _row(id="a", name="again"),  # line 4: duplicate
    "",  # line 5: blank, still counted
    _row(id="c", lat=95, lon=10),  # line 6
    _row(id="d", lat=10, lon=-200),  # line 7
    _row(id="e", price="cheap"),  # line 8
    _row(id="f", name="ok too", lat=None, lon=None),  # line 9
    _row(id="g", lat=-91, lon=0, price="x"),  # line 10: two problems in one row
]


def test_bad_rows_are_collected_then_raised(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "bad.jsonl", JSONL_WITH_BAD_ROWS)
    with pytest.raises(BadRowsError) as caught:
        read_items(path, SCHEMA)
    found = {(row.line, row.field) for row in caught.value.bad_rows}
    assert found == {
        (2, None),
        (3, "id"),
        (4, "id"),
        (6, "lat"),
        (7, "lon"),
        (8, "price"),
        (10, "lat"),
        (10, "price"),
    }
    assert caught.value.row_count == 7
    message = str(caught.value)
    assert f"{path}:4: id: duplicate id 'a' (first seen at line 1)" in message
    assert "95.0 is outside [-90, 90]" in message and "'cheap' is not a finite number" in message


def test_skip_bad_rows_keeps_the_good_ones(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "bad.jsonl", JSONL_WITH_BAD_ROWS)
    result = read_items(path, SCHEMA, skip_bad_rows=True)
    assert [item.id for item in result.items] == ["a", "f"]
    assert result.items[0].fields["title"] == "ok"  # the first 'a' wins; the duplicate is the bad row
    assert result.skipped_count == 7 and len(result.skipped) == 8


def test_error_lists_the_first_twenty_and_counts_the_rest(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "many.jsonl", [_row(name=f"no id {i}") for i in range(25)])
    with pytest.raises(BadRowsError) as caught:
        read_items(path, SCHEMA)
    message = str(caught.value)
    assert "25 bad row(s)" in message and "... and 5 more" in message
    assert f"{path}:20: id" in message and f"{path}:21: id" not in message


def test_csv_line_numbers_count_the_header_and_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        "id,name,genres,lat,lon\n"  # line 1
        '1,"Two\nline title",Drama;Comedy,1,2\n'  # lines 2-3
        "2,Fine,,,\n"  # line 4: empty cells are missing values
        ",No id,Drama,,\n"  # line 5
        "3,Far north,Drama,91,0\n"  # line 6
        "4,too,many,fields,1,2\n",  # line 7
        encoding="utf-8",
    )
    schema = ItemSchema(
        id="id", text=["name", "genres"], tags="genres", tags_delimiter=";", lat="lat", lon="lon"
    )
    result = read_items(path, schema, skip_bad_rows=True)
    assert [(i.id, i.tags, i.lat) for i in result.items] == [("1", ["Drama", "Comedy"], 1.0), ("2", [], None)]
    assert result.items[0].fields["name"] == "Two\nline title"
    assert [(row.line, row.field) for row in result.skipped] == [(5, "id"), (6, "lat"), (7, None)]


def test_csv_missing_column_and_unknown_format_fail_fast(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("id,title\n1,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"mapped column\(s\) \['genres'\] not found"):
        read_items(path, ItemSchema(id="id", text=["title", "genres"]))
    with pytest.raises(ValueError, match=r"unknown format '\.txt'"):
        read_items(tmp_path / "items.txt", ItemSchema(id="id", text="title"))
    assert read_items(path, ItemSchema(id="id", text="title"), fmt="csv").items[0].fields == {"title": "x"}


def test_parquet_rows_are_indexed_from_zero(tmp_path: Path) -> None:
    table = pa.table(
        {
            "sku": pa.array([10, 11, 10, 12], pa.int64()),
            "title": ["a", "b", "c", None],
            "tags": [["x", "y"], [], ["z"], None],
            "price": [1.0, None, 2.0, 3.0],
        }
    )
    path = tmp_path / "items.parquet"
    pq.write_table(table, path)
    schema = ItemSchema(id="sku", text="title", tags="tags", numeric_features={"price": "price"})
    result = read_items(path, schema, skip_bad_rows=True)
    assert [(i.id, i.tags, i.features) for i in result.items] == [
        ("10", ["x", "y"], {"price": 1.0}),
        ("11", [], {}),
        ("12", [], {"price": 3.0}),
    ]
    assert [(row.line, row.field) for row in result.skipped] == [(2, "id")]


def test_schema_is_validated() -> None:
    with pytest.raises(ValidationError, match="lat and lon come together"):
        ItemSchema(id="id", text="t", lat="lat")
    with pytest.raises(ValidationError):
        ItemSchema(id="id", text=[])
    with pytest.raises(ValidationError):
        ItemSchema(id="id", text="t", unknown_key="x")
    assert ItemSchema(id="id", text=["a", "b"]).text == {"a": "a", "b": "b"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (964982703, 964982703),
        ("964982703", 964982703),
        (964982703.9, 964982703),
        ("2000-07-30T18:45:03Z", 964982703),
        ("2000-07-30T20:45:03+02:00", 964982703),
        ("2000-07-30 18:45:03", 964982703),  # naive means UTC
        ("yesterday", None),
        (None, None),
        (True, None),
    ],
)
def test_parse_timestamp(value: object, expected: int | None) -> None:
    assert parse_timestamp(value) == expected


def test_events_from_csv_with_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "user,item,ts,w\n"
        "u1,i2,2000-01-01T00:00:10Z,1\n"
        "u2,i1,5,2.5\n"
        "u1,i1,2000-01-01T00:00:00Z,1\n"
        ",i3,7,1\n"  # line 5: missing user
        "u2,i3,soon,1\n"  # line 6: bad timestamp
        "u2,i2,9,lots\n"  # line 7: bad weight
        "u2,i4,9,1\n",  # line 8: an item outside any catalogue is not the reader's business
        encoding="utf-8",
    )
    schema = EventSchema(user_id="user", item_id="item", timestamp="ts", weight="w")
    with pytest.raises(BadRowsError) as caught:
        read_events(path, schema)
    bad = [(r.line, r.field) for r in caught.value.bad_rows]
    assert bad == [(5, "user_id"), (6, "timestamp"), (7, "weight")]
    events = read_events(path, schema, skip_bad_rows=True)
    assert events.user_ids.tolist() == ["u1", "u2", "u1", "u2"]
    assert events.item_ids.tolist() == ["i2", "i1", "i1", "i4"]
    assert events.timestamps.dtype == np.int64
    assert events.timestamps.tolist() == [946684810, 5, 946684800, 9]
    assert events.weights is not None and events.weights.tolist() == [1.0, 2.5, 1.0, 1.0]
    assert events.skipped_count == 3


def test_events_from_parquet_with_timestamp_type(tmp_path: Path) -> None:
    table = pa.table(
        {
            "user_id": ["a", "a", "b", "a"],
            "item_id": [3, 1, 2, 2],
            "timestamp": pa.array([30, 10, 5, 30], pa.timestamp("s", tz="UTC")),
        }
    )
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    events = read_events(path)
    assert events.weights is None
    assert events.timestamps.tolist() == [30, 10, 5, 30]
    assert events.item_ids.tolist() == ["3", "1", "2", "2"]  # integer ids read as strings, in file order


def test_movielens_items_and_ratings() -> None:
    schema = ItemSchema(id="movieId", text=["title", "genres"], tags="genres", tags_delimiter="|")
    items = read_items(MOVIELENS / "movies.csv", schema).items
    assert len(items) == 9742  # wc -l movies.csv minus the header
    toy_story = items[0]
    assert toy_story.id == "1" and toy_story.fields["title"] == "Toy Story (1995)"
    assert toy_story.tags == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    events = read_events(
        MOVIELENS / "ratings.csv", EventSchema(user_id="userId", item_id="movieId", weight="rating")
    )
    assert len(events) == 100836 and len(set(events.user_ids.tolist())) == 610
    assert set(events.item_ids.tolist()) <= {item.id for item in items}
    assert (
        events.weights is not None
        and 0.5 <= float(events.weights.min()) <= float(events.weights.max()) <= 5.0
    )
