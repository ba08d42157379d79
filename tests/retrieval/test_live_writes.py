"""Real-time writes through the REST API on the tiny shops collection: events shape the next recommendation,
a delete removes an item from every answer, bad writes get a 4xx naming the field, a restart replays the
log, and a rebuild folds it in without counting anything twice. Co-visitation over added events equals
co-visitation rebuilt with them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from indexer.behaviour import Behaviour, write_behaviour
from indexer.config import BehaviourConfig
from indexer.events import Events
from indexer.versions import VersionStore
from retrieval.branches.behaviour import CovisitSource
from retrieval.candidates import SearchQuery
from tests.conftest import SPRINGFIELD_IL, writing_client

T = 1_700_100_000  # after every built event


@pytest.fixture
def root(shops_root: Path, tmp_path: Path) -> Path:
    """A copy of the shops index root, so the writes of one test stay there."""
    copy = tmp_path / "shops"
    shutil.copytree(shops_root, copy)
    return copy


@pytest.fixture
def client(root: Path) -> Iterator[TestClient]:
    with writing_client({"shops": root}) as test_client:
        yield test_client


def _events(client: TestClient, *events: tuple[str, str, int], expect: int = 200) -> dict:
    body = {"events": [{"user_id": u, "item_id": i, "timestamp": t} for u, i, t in events]}
    response = client.post("/collections/shops/events", json=body)
    assert response.status_code == expect, response.text
    return response.json()


def _recommend(client: TestClient, **body: object) -> dict:
    response = client.post("/recommend", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _ids(body: dict) -> list[str]:
    return [hit["id"] for hit in body["results"]]


def test_events_shape_the_next_recommendation(client: TestClient) -> None:
    before = _recommend(client, user_id="newbie", k=5)
    assert all(set(hit["branches"]) == {"popular"} for hit in before["results"])  # cold start
    answer = _events(client, ("newbie", "sushi-il-0", T), ("newbie", "sushi-il-1", T + 60))
    assert answer["accepted"] == 2 and answer["log_offset"] > 0 and answer["collection"] == "shops"
    after = _recommend(client, user_id="newbie", k=5)
    found_by = set().union(*(hit["branches"] for hit in after["results"]))
    assert {"item2item", "user_pref"} & found_by, after
    assert not {"sushi-il-0", "sushi-il-1"} & set(_ids(after))  # seen items are excluded
    assert _ids(after)[0].split("-")[0] in {"sushi", "books"}, _ids(after)


def test_events_move_what_the_branches_read_of_popularity(client: TestClient) -> None:
    """`popular` and `user_pref`'s tie-break read the popularity the writes add to, not the one at load."""
    service = client.app.state.registry.get("shops")

    def preferred() -> list[str]:  # the sushi shops, tied on preference: popularity orders them
        outcome = service.run(service.recommendation(20, items=["sushi-il-0"]))
        return service.collection.external_ids_of(outcome.branches["user_pref"].rows)

    assert _ids(_recommend(client, user_id="stranger", k=1)) != ["sushi-il-2"]
    assert preferred().index("sushi-il-2") > preferred().index("sushi-ma-1")  # no events on it yet
    _events(client, *((f"fan{i}", "sushi-il-2", T) for i in range(30)))
    assert _ids(_recommend(client, user_id="stranger", k=1)) == ["sushi-il-2"]
    assert preferred()[0] == "sushi-il-2"


def test_older_events_take_their_place_in_time(client: TestClient) -> None:
    _events(client, ("user0", "books-il-2", T))
    _events(client, ("user0", "sushi-il-2", 1_600_000_000))  # before everything user0 did
    service = client.app.state.registry.get("shops")
    rows, times, _ = service.collection.behaviour.history("user0")
    ids = service.collection.external_ids_of(rows)
    assert ids[0] == "sushi-il-2" and ids[-1] == "books-il-2"
    assert list(times) == sorted(times)
    # At the same time as a built event, the one time order of histories: by item id.
    built = dict(zip(ids, times.tolist(), strict=True))
    _events(client, ("user0", "books-ma-0", built["coffee-ma-0"]))
    ids = service.collection.external_ids_of(service.collection.behaviour.history("user0")[0])
    assert ids.index("books-ma-0") == ids.index("coffee-ma-0") - 1


def test_bad_events_are_refused_naming_the_field(client: TestClient) -> None:
    bad = _events(client, ("newbie", "sushi-il-0", T), ("newbie", "no-such-shop", T), expect=422)
    [error] = bad["detail"]
    assert error["field"] == "events.1.item_id" and "no-such-shop" in error["msg"]
    shapes = [
        {"events": []},
        {"events": [{"user_id": "u", "item_id": "sushi-il-0", "timestamp": -1}]},
        {"events": [{"user_id": "u", "item_id": "sushi-il-0", "timestamp": 1_700_000_000_000}]},
        {"events": [{"user_id": "", "item_id": "sushi-il-0", "timestamp": T}]},
        {"events": [{"user_id": "u", "item_id": "sushi-il-0", "timestamp": T, "weight": -1}]},
    ]
    fields = []
    for body in shapes:
        response = client.post("/collections/shops/events", json=body)
        assert response.status_code == 422, body
        fields.append(response.json()["detail"][0]["field"])
    assert fields == [
        "events",
        "events.0.timestamp",
        "events.0.timestamp",
        "events.0.user_id",
        "events.0.weight",
    ]
    assert client.post("/collections/nope/events", json={"events": []}).status_code in (404, 422)
    service = client.app.state.registry.get("shops")
    assert "newbie" not in service.collection.behaviour  # nothing of a refused request was applied


def test_a_deleted_item_leaves_every_answer(client: TestClient) -> None:
    assert "sushi-il-0" in _ids(client.post("/search", json={"query": "sushi", "k": 20}).json())
    deleted = client.delete("/collections/shops/items/sushi-il-0")
    assert deleted.status_code == 200 and deleted.json()["accepted"] == 1
    assert client.get("/collections/shops/items/sushi-il-0").status_code == 404
    assert client.get("/collections/shops/similar/sushi-il-0").status_code == 404
    near = {"lat": SPRINGFIELD_IL[0], "lon": SPRINGFIELD_IL[1]}
    searched = client.post("/search", json={"query": "sushi", "k": 50, "location": near}).json()
    assert "sushi-il-0" not in _ids(searched) and "sushi-il-1" in _ids(searched)
    similar = client.get("/collections/shops/similar/sushi-il-1", params={"k": 50}).json()
    assert "sushi-il-0" not in _ids(similar)
    popular = _recommend(client, user_id="user1", k=50, exclude_seen=False)  # user1 had seen sushi-il-0
    assert "sushi-il-0" not in _ids(popular)
    refused = client.post("/recommend", json={"items": ["sushi-il-0"]})
    assert refused.status_code == 422 and refused.json()["detail"][0]["field"] == "items"
    assert _events(client, ("u", "sushi-il-0", T), expect=422)["detail"][0]["field"] == "events.0.item_id"
    again = client.delete("/collections/shops/items/sushi-il-0")
    assert again.status_code == 200 and again.json()["accepted"] == 0
    assert client.delete("/collections/shops/items/never-there").status_code == 404


def test_a_restart_replays_the_log(root: Path, client: TestClient) -> None:
    _events(client, ("newbie", "pizza-ma-0", T))
    client.delete("/collections/shops/items/coffee-ma-2")
    with writing_client({"shops": root}) as restarted:
        assert restarted.get("/collections/shops/items/coffee-ma-2").status_code == 404
        service = restarted.app.state.registry.get("shops")
        assert service.collection.external_ids_of(service.collection.behaviour.history("newbie")[0]) == [
            "pizza-ma-0"
        ]


def test_a_rebuild_folds_the_writes_and_replays_only_later_ones(
    root: Path, client: TestClient, shops_root: Path
) -> None:
    from indexer.build import build_collection
    from indexer.config import BuildConfig

    _events(client, ("newbie", "pizza-ma-0", T))
    client.delete("/collections/shops/items/coffee-ma-2")
    service = client.app.state.registry.get("shops")
    built_events = service.collection.manifest["params"]["behaviour"]["n_events"]
    manifest = service.collection.manifest["params"]
    config = BuildConfig.model_validate(manifest["config"])
    build_collection(
        Path(manifest["corpus"]), root, config, behaviour=Path(manifest["behaviour_log"]), progress=False
    )
    with writing_client({"shops": root}) as rebuilt:
        fresh = rebuilt.app.state.registry.get("shops")
        assert fresh.version == VersionStore(root).current_name() != service.version
        params = fresh.collection.manifest["params"]
        assert params["writes"]["events"] == 1 and params["writes"]["deleted_items"] == 1
        assert params["behaviour"]["n_events"] == built_events + 1  # folded once, not replayed again
        assert fresh.collection.behaviour.added_events == 0
        assert "coffee-ma-2" not in fresh.collection.row_of
        _events(rebuilt, ("later", "pizza-ma-1", T))
    with writing_client({"shops": root}) as restarted:
        again = restarted.app.state.registry.get("shops").collection.behaviour
        assert again.added_events == 1 and "later" in again and "newbie" in again


def test_a_version_directory_takes_no_writes(root: Path) -> None:
    version = VersionStore(root).current()
    with writing_client({"shops": version}) as pinned:
        response = pinned.post(
            "/collections/shops/events",
            json={"events": [{"user_id": "u", "item_id": "sushi-il-0", "timestamp": T}]},
        )
        assert response.status_code == 409 and "index root" in response.json()["detail"]


@dataclass
class _Items:
    """What `CovisitSource` reads of a collection: its behaviour and its size."""

    behaviour: Behaviour
    size: int

    def __len__(self) -> int:
        return self.size


def _behaviour(directory: Path, events: list[tuple[str, int, int]], n_items: int) -> Behaviour:
    users, rows, times = zip(*events, strict=True)
    ids = [f"i{row:02d}" for row in range(n_items)]
    columns = Events(np.array(users), np.array([ids[r] for r in rows]), np.array(times, dtype=np.int64), None)
    write_behaviour(
        directory, columns, {item: row for row, item in enumerate(ids)}, BehaviourConfig(item2vec=False)
    )
    return Behaviour(directory, ids)


def test_covisitation_counts_added_events_as_a_rebuild_would(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n_items = 12
    events = [(f"u{rng.integers(8)}", int(rng.integers(n_items)), t) for t in range(120)]
    # Added after the build: repeats of built pairs, new pairs of built users, and two users it never saw.
    added = [*events[90:], ("new1", 0, 200), ("new1", 5, 201), ("new2", 5, 202), ("new1", 0, 203)]
    live = _behaviour(tmp_path / "built", events[:90], n_items)
    live.add_events(
        [u for u, _, _ in added], [r for _, r, _ in added], [t for *_, t in added], [1.0] * len(added)
    )
    rebuilt = _behaviour(tmp_path / "all", events[:90] + added, n_items)
    streamed = CovisitSource(_Items(live, n_items))  # type: ignore[arg-type]
    from_scratch = CovisitSource(_Items(rebuilt, n_items))  # type: ignore[arg-type]
    for user in sorted({u for u, _, _ in events + added}):
        query = SearchQuery(text="", user_id=user)
        got, want = streamed.fetch(query, n_items), from_scratch.fetch(query, n_items)
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6)
        np.testing.assert_array_equal(got.rows, want.rows)
