"""`searchrec build` with item files, column maps, columns by name and the bad-row policy; `versions`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import indexer.build
from api.app import create_app
from api.cli import app
from indexer.encoders.torch import Encoder
from indexer.versions import VersionStore
from retrieval.collection import Collection
from tests.indexer.test_build_inputs import COLUMN_MAP, ITEMS, SHOPS, write_items

runner = CliRunner()
MAP_ARGS = [arg for pair in COLUMN_MAP for arg in ("--map", pair)]


@pytest.fixture(autouse=True)
def _shared_encoder(monkeypatch: pytest.MonkeyPatch, encoder: Encoder) -> None:
    """Builds in these tests reuse the session's loaded model instead of loading their own."""
    monkeypatch.setattr(indexer.build, "encoder_for", lambda config, root, spread=None: encoder)


def _build(corpus: Path, root: Path, *extra: str) -> Result:
    return runner.invoke(app, ["build", "--corpus", str(corpus), "--out", str(root), "--no-progress", *extra])


def test_build_with_column_map_name_and_behaviour(tmp_path: Path) -> None:
    corpus = write_items(tmp_path / "items.parquet", ITEMS)
    events = tmp_path / "events.csv"
    events.write_text("uid,item_id,timestamp\nu1,m1,100\nu1,m2,200\nu2,gone,300\n")
    result = _build(corpus, tmp_path / "idx", *MAP_ARGS, "--map", "user_id=uid", "--behaviour", str(events),
                    "--name", "shop")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "6 documents" in result.stdout and "left out 1 event(s) on unknown items" in result.stdout
    collection = Collection.load(tmp_path / "idx")
    try:
        assert collection.name == "shop"
        assert collection.behaviour is not None and collection.behaviour.users == ["u1"]
    finally:
        collection.close()


def test_bad_rows_exit_2_with_file_line_and_field_unless_skipped(tmp_path: Path) -> None:
    rows = [dict(row) for row in ITEMS]
    rows[1]["pop"] = "lots"  # line 3 of the CSV
    corpus = write_items(tmp_path / "items.csv", rows)
    failed = _build(corpus, tmp_path / "idx", *MAP_ARGS)
    assert failed.exit_code == 2
    assert f"{corpus}:3: popularity: 'lots' is not a finite number" in failed.output
    assert "pass --skip-bad-rows" in failed.output
    assert not (tmp_path / "idx" / "CURRENT").exists()

    skipped = _build(corpus, tmp_path / "idx", *MAP_ARGS, "--skip-bad-rows")
    assert skipped.exit_code == 0, skipped.output
    assert "5 documents" in skipped.stdout and "skipped 1 bad item row(s)" in skipped.stdout
    assert f"{corpus}:3: popularity" in skipped.output  # the log line names the first skipped row


def test_unknown_role_and_unknown_config_key_exit_2(tmp_path: Path) -> None:
    corpus = write_items(tmp_path / "items.csv", ITEMS)
    result = _build(corpus, tmp_path / "idx", "--map", "colour=cat")
    assert result.exit_code == 2 and "unknown column role 'colour'" in result.output
    config = tmp_path / "build.toml"
    config.write_text("analyser = 'english'\n")
    result = _build(corpus, tmp_path / "idx", "--config", str(config))
    assert result.exit_code == 2 and "analyser" in result.output and "Extra inputs" in result.output


def test_versions_list_and_rollback(tmp_path: Path) -> None:
    corpus = write_items(tmp_path / "items.jsonl", ITEMS)
    root = tmp_path / "idx"
    assert _build(corpus, root, *MAP_ARGS, "--limit", "4").exit_code == 0
    assert _build(corpus, root, *MAP_ARGS).exit_code == 0
    first, second = (v.name for v in VersionStore(root).published())

    listed = runner.invoke(app, ["versions", "list", str(root)])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["version", "created-at", "docs"]
    assert lines[1].split()[0] == first and lines[1].split()[-1] == "4"
    assert lines[2].split()[:2] == ["*", second] and lines[2].split()[-1] == "6"

    rolled = runner.invoke(app, ["versions", "rollback", str(root), first])
    assert rolled.exit_code == 0, rolled.output
    assert VersionStore(root).current_name() == first
    assert runner.invoke(app, ["versions", "list", str(root)]).stdout.splitlines()[1].split()[:2] == [
        "*",
        first,
    ]
    collection = Collection.load(root)
    try:
        assert collection.version == first and len(collection) == 4
    finally:
        collection.close()

    missing = runner.invoke(app, ["versions", "rollback", str(root), "v999999"])
    assert missing.exit_code == 2 and first in missing.output and second in missing.output
    assert VersionStore(root).current_name() == first
    empty = runner.invoke(app, ["versions", "list", str(tmp_path / "nothing")])
    assert empty.exit_code == 2 and "does not exist" in empty.output


def _built_columns(root: Path) -> tuple[dict, list[str]]:
    """The item column mapping a build's manifest records, and the numeric columns it wrote."""
    collection = Collection.load(root)
    try:
        return collection.manifest["params"]["config"]["items"], collection.numeric_names
    finally:
        collection.close()


def test_columns_by_name_are_printed_and_map_role_empty_turns_one_off(tmp_path: Path) -> None:
    rows = [{"ID": row["id"], "Title": row["title"], "body": row["text"], "Latitude": row["lat"],
             "longitude": row["lon"], "category": row["category"]} for row in SHOPS]  # fmt: skip
    corpus = write_items(tmp_path / "shops.parquet", rows)
    built = _build(corpus, tmp_path / "idx")
    assert built.exit_code == 0, built.output
    assert (
        "columns: id=ID, text=[title:Title, body], lat=Latitude, lon=longitude, category=category (by name; "
        "--map ROLE=COLUMN overrides, --map ROLE= turns one off)"
    ) in built.stderr
    assert _built_columns(tmp_path / "idx")[1] == ["lat", "lon"]

    off = _build(corpus, tmp_path / "off", "--map", "lat=", "--map", "text=body")
    assert off.exit_code == 0, off.output
    assert "columns: id=ID, text=[body], category=category (by name: id, category; " in off.stderr
    mapping, numeric = _built_columns(tmp_path / "off")
    assert (mapping["lat"], mapping["lon"], mapping["text"], numeric) == (None, None, {"body": "body"}, [])


def test_an_explicit_config_wins_over_names(tmp_path: Path) -> None:
    rows = [{**row, "kind": f"{row['category']}s", "shop": f"shop-{row['id']}"} for row in SHOPS]
    corpus = write_items(tmp_path / "shops.csv", rows)
    config = tmp_path / "build.toml"
    config.write_text("[items]\ncategory = 'kind'\ntext = ['text']\n")
    built = _build(corpus, tmp_path / "idx", "--config", str(config), "--map", "id=shop")
    assert built.exit_code == 0, built.output
    mapping, _ = _built_columns(tmp_path / "idx")
    assert (mapping["id"], mapping["text"], mapping["category"]) == ("shop", {"text": "text"}, "kind")
    assert (mapping["lat"], mapping["popularity"]) == ("lat", "popularity")  # unset: filled by name
    assert "(by name: lat, lon, popularity; " in built.stderr


def test_search_hits_show_the_name_when_there_is_no_title(tmp_path: Path) -> None:
    corpus = tmp_path / "places.csv"
    corpus.write_text(
        "id,name,description\np1,Luigi pizzeria,Wood-fired pizza in the old town\n"
        "p2,Golden dragon,Noodle soup and dumplings\np3,El Rincon,Tapas bar with sherry\n"
    )
    assert _build(corpus, tmp_path / "idx").exit_code == 0
    with TestClient(create_app(tmp_path / "idx")) as client:
        response = client.post("/search", json={"query": "noodle dumplings", "k": 1})
    assert response.status_code == 200, response.text
    assert [(hit["id"], hit["title"]) for hit in response.json()["results"]] == [("p2", "Golden dragon")]


def test_a_collection_is_served_under_its_built_name_and_ids_may_hold_slashes(tmp_path: Path) -> None:
    corpus = tmp_path / "films.csv"
    corpus.write_text(
        "id,title\nfilm/1,The river of stone\nfilm/2,A river in the clouds\nshort/3,Stone soup\n"
    )
    assert _build(corpus, tmp_path / "idx", "--name", "movies").exit_code == 0
    with TestClient(create_app(tmp_path / "idx")) as client:  # no NAME=: the recorded name, not "idx"
        assert [c["name"] for c in client.get("/collections").json()] == ["movies"]
        item = client.get("/collections/movies/items/film/1")
        assert item.status_code == 200, item.text
        assert (item.json()["id"], item.json()["fields"]["title"]) == ("film/1", "The river of stone")
        similar = client.get("/collections/movies/similar/film/1", params={"k": 2})
        assert similar.status_code == 200, similar.text
        assert {hit["id"] for hit in similar.json()["results"]} == {"film/2", "short/3"}
        assert client.get("/collections/movies/items/film/9").status_code == 404
    with TestClient(create_app([("films", tmp_path / "idx")])) as client:  # a name given wins
        assert [c["name"] for c in client.get("/collections").json()] == ["films"]


def test_map_vector_builds_from_the_items_own_vectors_and_serves_them(tmp_path: Path) -> None:
    from tests.indexer.test_item_vectors import DIM, PER_TOPIC, topic_rows, write_vector_items

    corpus = write_vector_items(tmp_path / "items.csv", topic_rows())
    result = _build(corpus, tmp_path / "idx", "--map", "vector=emb", "--name", "topics")
    assert result.exit_code == 0, result.output
    assert "columns: id=id, text=[title, text], vector=emb" in result.output
    assert f"encoder: supplied vectors (dim {DIM}) from column emb" in result.output
    with TestClient(create_app(tmp_path / "idx")) as client:
        search = client.post("/search", json={"query": "espresso coffee", "k": 3, "explain": True})
        assert search.status_code == 200, search.text
        assert search.json()["degraded"] == [] and "dense" not in search.json()["explain"]
        assert {hit["id"].split("-")[0] for hit in search.json()["results"]} == {"coffee"}
        similar = client.get("/collections/topics/similar/books-0", params={"k": PER_TOPIC - 1})
        assert similar.status_code == 200, similar.text
        assert {hit["id"] for hit in similar.json()["results"]} == {f"books-{i}" for i in range(1, PER_TOPIC)}

    unmapped = _build(corpus, tmp_path / "plain", "--map", "vector=")  # the text is encoded instead
    assert unmapped.exit_code == 0, unmapped.output
    assert "encoder auto: torch" in unmapped.output
