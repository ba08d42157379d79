"""A rebuild folds the service's logged writes in: events join the behaviour input, deleted items leave the
catalogue, and what was logged after the build's snapshot is left for the service to replay."""

from __future__ import annotations

from pathlib import Path

from indexer.build import build_collection
from indexer.config import BehaviourConfig, BuildConfig, apply_column_map
from indexer.encoders.torch import Encoder
from indexer.ids import read_ids
from indexer.logged_writes import delete_record, events_record, fold_log, write_log_of
from indexer.versions import resolve_artifact
from retrieval.collection import Collection
from tests.indexer.test_build_behaviour import EVENT_MAP, EVENTS, T0
from tests.indexer.test_build_inputs import COLUMN_MAP, ITEMS, write_items


def _build(tmp_path: Path, encoder: Encoder, root: Path) -> dict:
    corpus = write_items(tmp_path / "items.csv", ITEMS)
    log = tmp_path / "events.csv"
    log.write_text(EVENTS)
    config = apply_column_map(
        BuildConfig(behaviour=BehaviourConfig(half_life_days=1.0)), [*COLUMN_MAP, *EVENT_MAP]
    )
    build_collection(corpus, root, config, behaviour=log, encoder=encoder, progress=False)
    collection = Collection.load(root, encoder=encoder)
    try:
        return {
            "ids": read_ids(resolve_artifact(root)),
            "writes": collection.manifest["params"]["writes"],
            "n_events": collection.manifest["params"]["behaviour"]["n_events"],
            "u9": collection.external_ids_of(collection.behaviour.history("u9")[0]),
            "u1": collection.external_ids_of(collection.behaviour.history("u1")[0]),
        }
    finally:
        collection.close()


def test_a_rebuild_folds_logged_events_and_deletes(tmp_path: Path, encoder: Encoder) -> None:
    root = tmp_path / "idx"
    first = _build(tmp_path, encoder, root)
    assert first["writes"] == {"upto": 0, "events": 0, "deleted_items": 0, "written_items": 0}
    assert not (root / "writes").exists()  # a root without writes gets no log
    log = write_log_of(root)
    log.append(events_record([("u9", "m3", T0 + 3 * 86_400, 1.0), ("u1", "m3", T0 - 86_400, 2.0)]))
    log.append(delete_record("m6"))
    end = log.end()
    second = _build(tmp_path, encoder, root)
    assert second["writes"] == {"upto": end, "events": 2, "deleted_items": 1, "written_items": 0}
    assert "m6" not in second["ids"] and len(second["ids"]) == len(first["ids"]) - 1
    assert second["n_events"] == first["n_events"] + 2
    assert second["u9"] == ["m3"]
    assert second["u1"] == ["m3", "m1", "m2"]  # an older logged event takes its place in time
    third = _build(tmp_path, encoder, root)  # the log folds from its start again: counted once
    assert third["writes"] == second["writes"] and third["n_events"] == second["n_events"]


def test_writes_after_the_snapshot_are_left_to_replay(tmp_path: Path) -> None:
    log = write_log_of(tmp_path)
    log.append(delete_record("a"))
    folded = fold_log(tmp_path)
    log.append(delete_record("b"))  # while the build runs
    assert folded.deleted == {"a"} and folded.upto == log.segments()[-1][0]
    assert [record.payload["id"] for record in log.read(folded.upto)] == ["b"]
