"""Shared fixtures, each built once per session: a small SciFact slice, a small XQuAD-R Chinese slice, and a
tiny local-shops collection with categories, tags, coordinates, popularity and a behaviour log (`shops_root`:
the retrieval tests and the API's fuzz test both serve it; `shops_w2v_root` adds Word2Vec), and search rankers
trained on random lists."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from indexer.encoders.torch import Encoder

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from indexer.encoders.onnx_int8 import OnnxEncoder

DATA = Path(__file__).resolve().parents[1] / "data"
SCIFACT = DATA / "scifact"
XQUAD_ZH = DATA / "xquad-r-zh"
SLICE_DOCS = 200
XQUAD_SLICE_DOCS = 60


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The user cache folder (`SEARCHREC_CACHE_DIR`) of this test session: where a service exports the
    ONNX query encoder it embeds queries with (once per session), never the developer's own."""
    folder = tmp_path_factory.mktemp("user-cache")
    saved = os.environ.get("SEARCHREC_CACHE_DIR")
    os.environ["SEARCHREC_CACHE_DIR"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("SEARCHREC_CACHE_DIR", None)
    else:
        os.environ["SEARCHREC_CACHE_DIR"] = saved


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return Encoder(batch_size=32)


@pytest.fixture(scope="session")
def onnx_dir(user_cache: Path) -> Path:
    """The session's user cache of ONNX exports, holding the int8 MiniLM export: the one the services in
    these tests embed queries with."""
    from indexer.encoders.onnx_int8 import default_onnx_dir, export_int8

    export_int8(default_onnx_dir())  # measured 7 s (2 shared cores): export, quantise
    return default_onnx_dir()


@pytest.fixture(scope="session")
def onnx_encoder(onnx_dir: Path) -> OnnxEncoder:
    from indexer.encoders.onnx_int8 import OnnxEncoder

    return OnnxEncoder(batch_size=16, onnx_dir=onnx_dir)


@pytest.fixture(scope="session")
def slice_embeddings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Embedding cache filled by the SciFact slice's build: another build of the slice with
    `CachedEncoder(encoder, slice_embeddings)` publishes a new version without running the model again."""
    return tmp_path_factory.mktemp("slice-embeddings")


@pytest.fixture(scope="session")
def scifact_slice_root(
    tmp_path_factory: pytest.TempPathFactory, encoder: Encoder, slice_embeddings: Path
) -> Path:
    """Index root holding one published build of the first 200 SciFact documents."""
    from indexer.build import build_collection
    from indexer.config import BuildConfig
    from indexer.encoders.embedding_cache import CachedEncoder

    root = tmp_path_factory.mktemp("scifact-slice")
    cached = CachedEncoder(encoder, slice_embeddings)
    build_collection(SCIFACT, root, BuildConfig(limit=SLICE_DOCS), encoder=cached, progress=False)
    return root


@pytest.fixture(scope="session")
def sharded_slice_root(
    tmp_path_factory: pytest.TempPathFactory,
    encoder: Encoder,
    slice_embeddings: Path,
    scifact_slice_root: Path,
) -> Path:
    """Index root holding the SciFact slice built in two shards with exact vector search; the embeddings come
    from the slice's cache (`scifact_slice_root` filled it), so the model does not run."""
    from indexer.build import build_collection
    from indexer.config import BuildConfig
    from indexer.encoders.embedding_cache import CachedEncoder

    root = tmp_path_factory.mktemp("sharded-slice") / "scifact"
    config = BuildConfig(limit=SLICE_DOCS, ann_backend="exact", shards=2)
    build_collection(SCIFACT, root, config, encoder=CachedEncoder(encoder, slice_embeddings), progress=False)
    return root


@pytest.fixture(scope="session")
def xquad_slice_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Index root holding one build of the first 60 XQuAD-R zh sentences with the default configuration
    (so `auto` picks the encoder: e5-multilingual, which needs AVX2)."""
    from indexer.build import build_collection
    from indexer.config import BuildConfig
    from indexer.encoders.e5_multilingual import unavailable_reason

    problem = unavailable_reason()
    if problem is not None:
        pytest.skip(f"e5-multilingual cannot run here: {problem}")
    root = tmp_path_factory.mktemp("xquad-slice")
    build_collection(XQUAD_ZH, root, BuildConfig(limit=XQUAD_SLICE_DOCS), progress=False)
    return root


# Two towns named Springfield, far apart; shops clustered around each.
WRITE_TOKEN = "write-admin-token"  # the admin token the write tests start services with
WRITE_AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}


@contextmanager
def writing_client(roots: dict[str, Path], **app_options: object) -> Iterator[TestClient]:
    """A test client of a service over `roots` that takes writes: started with the admin token, which every
    request carries."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(roots, admin_token=WRITE_TOKEN, **app_options)  # type: ignore[arg-type]
    with TestClient(app, headers=WRITE_AUTH) as client:
        yield client


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
