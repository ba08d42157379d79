"""A collection rebuilt on a behaviour history (`jobs.history.rebuild_on_history`)."""

from __future__ import annotations

from pathlib import Path

import pytest

import indexer.build
from indexer.config import BuildConfig
from indexer.manifests import read_collection_params
from indexer.versions import resolve_artifact
from jobs.history import rebuild_on_history
from tests.indexer.test_item_vectors import build_vectors, topic_rows, write_vector_items


def test_a_collection_of_supplied_vectors_is_rebuilt_from_them_without_an_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(config: BuildConfig, root: Path, spread: object = None) -> None:
        raise AssertionError("a rebuild of supplied vectors asked for an encoder")

    monkeypatch.setattr(indexer.build, "encoder_for", refuse)
    corpus = write_vector_items(tmp_path / "items.jsonl", topic_rows())
    build_vectors(corpus, tmp_path / "idx")
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,timestamp\nu1,pizza-0,1\nu1,pizza-1,2\nu2,sushi-0,1\nu2,sushi-2,3\n")
    rebuilt, split = rebuild_on_history(tmp_path / "idx", events, tmp_path / "work", progress=False)
    assert split.held_out == {"u1": "pizza-1", "u2": "sushi-2"}
    params = read_collection_params(resolve_artifact(rebuilt))
    assert params.encoder.kind == "supplied" and params.behaviour is not None
