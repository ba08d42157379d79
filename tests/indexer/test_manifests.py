"""A collection manifest's build parameters are read validated: nothing missing is filled with a default."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from indexer.config import BuildConfig
from indexer.manifests import CollectionParams


def _params(**changes: Any) -> dict[str, Any]:
    params = {
        "config": BuildConfig().model_dump(),
        "name": None,
        "corpus": "items.jsonl",
        "encoder": {"kind": "onnx-int8", "model": "all-MiniLM-L6-v2", "dim": 384},
        "word2vec": {"trained": True, "dim": 100},
        "behaviour": None,
        "seconds": {"encode": 1.0},
    }
    params.update(changes)
    return params


def test_the_parts_the_online_side_reads_are_typed() -> None:
    params = CollectionParams.model_validate(_params())
    assert (params.encoder.kind, params.word2vec.trained, params.behaviour) == ("onnx-int8", True, None)
    with_events = CollectionParams.model_validate(_params(behaviour={"n_events": 3}))
    assert with_events.behaviour == {"n_events": 3}


@pytest.mark.parametrize(
    "changes",
    [
        {"encoder": {"kind": "word-counts"}},  # no such encoder
        {"encoder": {"model": "all-MiniLM-L6-v2"}},  # kind missing
        {"word2vec": {}},  # whether it was trained, missing
    ],
)
def test_a_manifest_missing_or_misnaming_a_part_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CollectionParams.model_validate(_params(**changes))


def test_a_manifest_that_does_not_say_whether_it_has_behaviour_is_refused() -> None:
    missing = _params()
    del missing["behaviour"]
    with pytest.raises(ValidationError, match="behaviour"):
        CollectionParams.model_validate(missing)
