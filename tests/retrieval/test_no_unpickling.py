"""Nothing on the load path unpickles: a version's files are data (``.npy`` without pickles, JSON, RocksDB
tables, the ANN libraries' binary files), so loading one cannot run code stored in it.

With `pickle.load`, `pickle.loads` and `pickle.Unpickler` (and their C twins in `_pickle`) made to fail, a
service loads a collection with every optional part (Word2Vec, behaviour arrays, item2vec) and a learned
ranker (MLP weights through ``torch.load(weights_only=True)``), then answers a search and a recommendation.
"""

from __future__ import annotations

import _pickle
import pickle
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app


class Unpickling(AssertionError):
    """Raised by the patched unpicklers."""


def _refuse(*args: object, **kwargs: object) -> None:
    raise Unpickling("something on the load path unpickled")


class _RefusingUnpickler:
    def __init__(self, *args: object, **kwargs: object) -> None:
        _refuse()


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (pickle, _pickle):
        monkeypatch.setattr(module, "load", _refuse)
        monkeypatch.setattr(module, "loads", _refuse)
        monkeypatch.setattr(module, "Unpickler", _RefusingUnpickler)
    with pytest.raises(Unpickling):
        pickle.loads(pickle.dumps(1))


def test_loading_and_answering_unpickles_nothing(
    shops_w2v_root: Path, search_rankers: dict[str, Path], onnx_dir: Path, no_unpickling: None
) -> None:
    # onnx_dir: the query encoder's export exists already; making it is a build step, not loading
    rankers = {"shops": search_rankers["listwise_mlp"]}
    with TestClient(create_app({"shops": shops_w2v_root}, rankers=rankers)) as client:
        collection = client.app.state.registry.get("shops").collection  # type: ignore[attr-defined]
        assert collection.text_vectors is not None and collection.behaviour is not None
        assert collection.behaviour.item_vectors is not None
        ready = client.get("/readyz").json()
        assert (
            ready["scorers"]["shops"]["error"] is None
            and ready["scorers"]["shops"]["scorer"] == "listwise_mlp"
        )
        search = client.post("/search", json={"query": "fresh sushi and sashimi", "k": 5})
        recommend = client.post("/collections/shops/recommend", json={"user_id": "user1", "k": 5})
    assert search.status_code == 200 and recommend.status_code == 200, (search.text, recommend.text)
    hits = search.json()["results"]
    assert search.json()["scorer"] == "listwise_mlp" and any("w2v" in hit["branches"] for hit in hits)
    recommended = recommend.json()["results"]
    assert recommended and any("item2item" in hit["branches"] for hit in recommended)
