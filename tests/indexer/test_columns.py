"""Columns by convention: reading an item file's header, filling unset roles by name, `--map ROLE=`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import indexer.columns
from indexer.columns import read_header, resolve_columns
from indexer.config import BuildConfig, ItemColumns, apply_column_map

EXAMPLE = ["id", "title", "text", "lat", "lon", "category", "popularity"]


def _unset() -> ItemColumns:
    """The item mapping of a build with no config and no --map."""
    return apply_column_map(BuildConfig(), []).items


def test_header_of_each_format(tmp_path: Path) -> None:
    csv_file = tmp_path / "items.csv"
    csv_file.write_text("\ufeffid,Title,body\n1,a,b\n", encoding="utf-8")  # a BOM is not part of the name
    assert read_header(csv_file, "csv") == ["id", "Title", "body"]

    parquet = tmp_path / "items.parquet"
    pq.write_table(pa.table({"_id": ["1"], "name": ["a"]}), parquet)
    assert read_header(parquet, "parquet") == ["_id", "name"]

    jsonl = tmp_path / "items.jsonl"
    lines = ['{"id": "1", "title": "a"}', "not json", "[1, 2]", "", '{"id": "2", "lat": 1, "lon": 2}']
    jsonl.write_text("\n".join(lines) + "\n")
    assert read_header(jsonl, "jsonl") == [
        "id",
        "title",
        "lat",
        "lon",
    ]  # union of keys, bad lines passed over

    with pytest.raises(ValueError, match=r"format 'xml'; choose csv, jsonl or parquet"):
        read_header(jsonl, "xml")


def test_jsonl_header_reads_only_the_first_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indexer.columns, "HEADER_SAMPLE_ROWS", 2)
    jsonl = tmp_path / "items.jsonl"
    rows = [{"id": "1"}, {"id": "2", "text": "b"}, {"id": "3", "late": "c"}]
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert read_header(jsonl, "jsonl") == ["id", "text"]


def test_every_role_is_filled_by_its_own_name() -> None:
    resolved = resolve_columns(_unset(), EXAMPLE)
    columns = resolved.columns
    assert (columns.id, columns.text) == ("id", {"title": "title", "text": "text"})
    assert (columns.lat, columns.lon, columns.category, columns.popularity) == (
        "lat",
        "lon",
        "category",
        "popularity",
    )
    assert columns.tags is None
    assert resolved.by_name == ("id", "text", "lat", "lon", "category", "popularity")
    assert resolved.notes == ()
    assert resolved.describe() == (
        "columns: id=id, text=[title, text], lat=lat, lon=lon, category=category, popularity=popularity "
        "(by name; --map ROLE=COLUMN overrides, --map ROLE= turns one off)"
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["_id", "body", "latitude", "longitude"], ("_id", {"body": "body"}, "latitude", "longitude")),
        (["item_id", "content", "lat", "lng"], ("item_id", {"content": "content"}, "lat", "lng")),
        (["doc_id", "description", "Lat", "Long"], ("doc_id", {"description": "description"}, "Lat", "Long")),
        (["ID", "TITLE", "Body", "LATITUDE", "LON"],
         ("ID", {"title": "TITLE", "body": "Body"}, "LATITUDE", "LON")),
    ],
)  # fmt: skip
def test_aliases_match_case_insensitively_and_keep_the_file_spelling(
    header: list[str], expected: tuple[str, dict[str, str], str, str]
) -> None:
    columns = resolve_columns(_unset(), header).columns
    assert (columns.id, columns.text, columns.lat, columns.lon) == expected


def test_text_fields_follow_the_alias_order_so_a_name_comes_first() -> None:
    columns = resolve_columns(_unset(), ["description", "Name", "shop_id", "id", "category"]).columns
    assert columns.text == {"name": "Name", "description": "description"}
    assert resolve_columns(_unset(), ["body", "name", "title", "id"]).columns.text == {
        "title": "title",
        "name": "name",
        "body": "body",
    }


def test_several_id_candidates_take_the_first_alias_and_say_so() -> None:
    resolved = resolve_columns(_unset(), ["id", "Id", "_id", "text"])
    assert resolved.columns.id == "_id"
    assert resolved.notes == (
        "note: columns ['_id', 'id', 'Id'] could be the id; using '_id' (--map id=COLUMN)",
    )


def test_one_coordinate_alone_fills_neither_and_says_so() -> None:
    resolved = resolve_columns(_unset(), ["id", "text", "latitude", "popularity"])
    assert (resolved.columns.lat, resolved.columns.lon) == (None, None)
    assert resolved.by_name == ("id", "text", "popularity")
    (note,) = resolved.notes
    assert "'latitude' looks like the latitude" in note and "(lon, lng, long, longitude)" in note
    assert "coordinates are left out" in note


def test_explicit_roles_win_and_their_columns_are_not_reused() -> None:
    config = apply_column_map(BuildConfig(), ["id=title", "category=kind", "numeric.stars=popularity"])
    resolved = resolve_columns(config.items, [*EXAMPLE, "kind"])
    columns = resolved.columns
    assert (columns.id, columns.category, columns.numeric_features) == (
        "title",
        "kind",
        {"stars": "popularity"},
    )
    assert columns.text == {"text": "text"}  # 'title' is the id here, so it is not also a text field
    assert columns.popularity is None  # 'popularity' is a feature here
    assert resolved.by_name == ("text", "lat", "lon")
    assert resolved.describe().startswith(
        "columns: id=title, text=[text], lat=lat, lon=lon, category=kind, numeric.stars=popularity "
        "(by name: text, lat, lon; "
    )


def test_a_toml_config_counts_as_explicit(tmp_path: Path) -> None:
    toml = tmp_path / "build.toml"
    toml.write_text("[items]\ntext = ['body']\ncategory = 'kind'\n")
    columns = resolve_columns(BuildConfig.from_toml(toml).items, [*EXAMPLE, "body", "kind"]).columns
    assert (columns.id, columns.text, columns.category) == ("id", {"body": "body"}, "kind")


def test_map_role_empty_turns_it_off() -> None:
    for pair in ("lat=", "lon="):  # either one turns both coordinates off
        config = apply_column_map(BuildConfig(), [pair, "popularity="])
        resolved = resolve_columns(config.items, EXAMPLE)
        assert (resolved.columns.lat, resolved.columns.lon, resolved.columns.popularity) == (None, None, None)
        assert resolved.by_name == ("id", "text", "category")
    config = apply_column_map(
        BuildConfig(), ["numeric.year=year", "numeric.year=", "weight=rating", "weight="]
    )
    assert config.items.numeric_features == {} and config.events.weight is None


def test_required_roles_cannot_be_turned_off() -> None:
    with pytest.raises(ValueError, match=r"'id=' would turn off 'id'.*\['category', 'tags'"):
        apply_column_map(BuildConfig(), ["id="])
    with pytest.raises(ValueError, match="'timestamp', which every build needs"):
        apply_column_map(BuildConfig(), ["timestamp= "])


def test_a_resolved_mapping_stays_as_it_is() -> None:
    """A manifest's stored mapping, read back for a rebuild, sets every role, so nothing is guessed again."""
    first = resolve_columns(_unset(), ["id", "text", "lat"]).columns
    stored = BuildConfig.model_validate({"items": first.model_dump()}).items
    again = resolve_columns(stored, ["id", "text", "lat", "lon", "category"])
    assert again.columns == first and again.by_name == ()


def test_no_id_or_text_column_names_the_choices_and_the_columns() -> None:
    expected = (
        r"items\.csv: no id column; name one with --map id=COLUMN.*"
        r"\['_id', 'id', 'item_id', 'doc_id'\]; the file has columns \['sku', 'text'\]"
    )
    with pytest.raises(ValueError, match=expected):
        resolve_columns(_unset(), ["sku", "text"], "items.csv")
    with pytest.raises(ValueError, match=r"no text column.*'title', 'name', 'text', 'body', 'content'"):
        resolve_columns(_unset(), ["id", "words"])
    assert resolve_columns(_unset(), []).columns == _unset()  # an empty file: the reader says so
