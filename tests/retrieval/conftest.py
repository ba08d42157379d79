"""A tiny local-shops collection with categories, tags, coordinates, popularity and a behaviour log (and a
variant with Word2Vec too), and search rankers trained on random lists."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from indexer.encoders.torch import Encoder

# Two towns named Springfield, far apart; shops clustered around each.
SPRINGFIELD_IL = (39.80, -89.64)
SPRINGFIELD_MA = (42.10, -72.59)
KINDS = {
    "pizza": ("Pizza", "wood fired pizza with mozzarella and basil", "italian|oven"),
    "sushi": ("Sushi", "fresh sushi and sashimi with rice and fish", "japanese|fish"),
    "books": ("Books", "second hand books novels and poetry", "reading|paper"),
    "coffee": ("Coffee", "espresso coffee and pastries", "cafe|breakfast"),
}


def shop_rows() -> list[dict]:
    town = {"title": "Springfield", "category": "town", "tags": "", "popularity": 1}
    rows = [
        {**town, "id": "town-il", "text": "Springfield town hall, Illinois", "lat": SPRINGFIELD_IL[0],
         "lon": SPRINGFIELD_IL[1]},
        {**town, "id": "town-ma", "text": "Springfield town hall, Massachusetts", "lat": SPRINGFIELD_MA[0],
         "lon": SPRINGFIELD_MA[1]},
    ]  # fmt: skip
    for town, (lat, lon) in (("il", SPRINGFIELD_IL), ("ma", SPRINGFIELD_MA)):
        for kind, (title, text, tags) in KINDS.items():
            for i in range(3):
                rows.append(
                    {
                        "id": f"{kind}-{town}-{i}",
                        "title": f"{title} shop {i}",
                        "text": text,
                        "category": kind,
                        "tags": tags,
                        "lat": lat + 0.01 * (i + 1),
                        "lon": lon + 0.01 * (i + 1),
                        "popularity": 10 * (i + 1) + (5 if kind == "coffee" else 0),
                    }
                )
    return rows


def shop_events() -> list[tuple[str, str, int]]:
    """Pizza lovers eat pizza then coffee; sushi lovers sushi then books. Times increase within a user."""
    events = []
    t = 1_700_000_000
    for user in range(12):
        kind, after = ("pizza", "coffee") if user % 2 == 0 else ("sushi", "books")
        town = "il" if user % 3 else "ma"
        for step, item in enumerate(
            [f"{kind}-{town}-0", f"{kind}-{town}-1", f"{after}-{town}-0", f"{after}-{town}-1"]
        ):
            events.append((f"user{user}", item, t + 3600 * step))
    return events


@pytest.fixture(scope="session")
def shops_root(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    from indexer.build import build_collection
    from indexer.config import BuildConfig, apply_column_map

    folder = tmp_path_factory.mktemp("shops")
    items = folder / "items.jsonl"
    items.write_text("".join(json.dumps(row) + "\n" for row in shop_rows()))
    events = folder / "events.csv"
    with events.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "timestamp"])
        writer.writerows(shop_events())
    config = apply_column_map(
        BuildConfig(),
        ["text=title,text", "category=category", "tags=tags", "lat=lat", "lon=lon", "popularity=popularity"],
    )  # fmt: skip
    config = config.model_copy(update={"word2vec": config.word2vec.model_copy(update={"enabled": False})})
    root = folder / "index"
    build_collection(items, root, config, behaviour=events, encoder=encoder, progress=False)
    return root


@pytest.fixture(scope="session")
def shops_w2v_root(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    """The shops collection with Word2Vec as well: every optional part a version can hold (text Word2Vec,
    behaviour arrays, item2vec)."""
    from indexer.artifact import read_manifest
    from indexer.build import build_collection
    from indexer.config import BuildConfig, apply_column_map
    from indexer.versions import resolve_artifact

    folder = tmp_path_factory.mktemp("shops-w2v")
    items = folder / "items.jsonl"
    items.write_text("".join(json.dumps(row) + "\n" for row in shop_rows()))
    events = folder / "events.csv"
    events.write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in shop_events()))
    config = apply_column_map(
        BuildConfig(),
        ["text=title,text", "category=category", "tags=tags", "lat=lat", "lon=lon", "popularity=popularity"],
    )  # fmt: skip
    root = folder / "index"
    build_collection(items, root, config, behaviour=events, encoder=encoder, progress=False)
    params = read_manifest(resolve_artifact(root))["params"]
    assert params["word2vec"]["trained"] and params["behaviour"]["item2vec"]["trained"]
    return root


@pytest.fixture(scope="session")
def search_rankers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Search rankers over the default features, one per model type, trained on random lists (for tests of
    loading and serving, not of ranking): model type -> ranker root."""
    import numpy as np

    from ranker.artifact import write_ranker
    from ranker.features import default_search_declaration
    from ranker.models import Groups, LambdaMart, ListwiseMlp

    declaration = default_search_declaration()
    width = len(declaration.names)
    rng = np.random.default_rng(0)
    lists = Groups.stack(
        [f"q{i}" for i in range(6)],
        [rng.normal(size=(30, width)) for _ in range(6)],
        [rng.integers(0, 2, 30) for _ in range(6)],
        [np.ones(3)] * 6,
        width,
    )
    roots = {}
    for model in (LambdaMart({"min_data_in_leaf": 5}), ListwiseMlp(epochs=2, patience=1)):
        metrics = {model.kind: model.fit(lists, lists, seed=0)}
        roots[model.kind] = tmp_path_factory.mktemp("rankers") / model.kind
        write_ranker(roots[model.kind], model, declaration, metrics=metrics, training={"seed": 0})
    return roots
