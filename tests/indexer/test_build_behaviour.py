"""Behaviour events: time-ordered user histories, time-decayed popularity, item2vec, unknown items counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.behaviour import decayed_popularity
from indexer.build import BuildReport, build_collection
from indexer.config import BehaviourConfig, BuildConfig, apply_column_map
from indexer.encoders.torch import Encoder
from indexer.rows import BadRowsError
from retrieval.collection import Collection
from tests.indexer.test_build_inputs import COLUMN_MAP, ITEMS, write_items

T0 = 1_700_000_000
DAY = 86_400
# File order differs from time order on purpose; ISO and epoch times mix; z9 is not in the catalogue.
EVENTS = f"""userId,itemId,ts,rating
u1,m1,{T0},5
u2,m2,{T0 + 2 * DAY},1
u1,m2,{T0 + DAY},3
u2,m1,2023-11-15T22:13:20+00:00,2
u2,z9,{T0},1
u3,m3,{T0 + 2 * DAY},4
"""
EVENT_MAP = ["user_id=userId", "item_id=itemId", "timestamp=ts", "weight=rating"]


def _build(
    tmp_path: Path, encoder: Encoder, events: str, *, skip_bad_rows: bool = False
) -> tuple[Path, BuildReport]:
    corpus = write_items(tmp_path / "items.csv", ITEMS)
    log = tmp_path / "events.csv"
    log.write_text(events)
    config = BuildConfig(behaviour=BehaviourConfig(half_life_days=1.0), skip_bad_rows=skip_bad_rows)
    config = apply_column_map(config, [*COLUMN_MAP, *EVENT_MAP])
    report = build_collection(
        corpus, tmp_path / "idx", config, behaviour=log, encoder=encoder, progress=False
    )
    return tmp_path / "idx", report


def test_histories_popularity_and_item2vec(tmp_path: Path, encoder: Encoder) -> None:
    root, report = _build(tmp_path, encoder, EVENTS)
    assert report.unknown_item_events == 1
    collection = Collection.load(root, encoder=encoder)
    try:
        behaviour = collection.behaviour
        assert behaviour is not None
        assert behaviour.users == ["u1", "u2", "u3"]
        np.testing.assert_array_equal(behaviour.indptr, [0, 2, 4, 5])
        rows, times, weights = behaviour.history("u2")
        assert collection.external_ids_of(rows) == ["m1", "m2"]  # time order, not file order
        np.testing.assert_array_equal(times, [T0 + DAY, T0 + 2 * DAY])
        np.testing.assert_array_equal(weights, [2.0, 1.0])
        assert behaviour.history("nobody")[0].size == 0 and "u3" in behaviour
        # Half-life one day before the newest event (T0 + 2 days): m1 = 0.25 + 0.5, m2 = 0.5 + 1, m3 = 1.
        np.testing.assert_allclose(behaviour.popularity, [0.75, 1.5, 1.0, 0, 0, 0])
        np.testing.assert_array_equal(behaviour.counts, [2, 2, 1, 0, 0, 0])
        np.testing.assert_allclose(collection.popularity, behaviour.popularity)  # preferred over the column
        params = collection.manifest["params"]["behaviour"]
        assert (params["n_events"], params["unknown_item_events"], params["unknown_items"]) == (5, 1, 1)
        assert params["reference_time"] == T0 + 2 * DAY and params["half_life_days"] == 1.0
        # item2vec is trained on users with two or more events (u1, u2): m1 and m2 get vectors.
        assert params["item2vec"]["trained"] and params["item2vec"]["sequences"] == 2
        assert behaviour.item_known is not None and behaviour.item_vectors is not None
        np.testing.assert_array_equal(behaviour.item_known, [1, 1, 0, 0, 0, 0])
        assert behaviour.item_vectors.shape == (6, 64)
        np.testing.assert_allclose(np.linalg.norm(behaviour.item_vectors[:2], axis=1), 1.0, rtol=1e-5)
    finally:
        collection.close()


def test_weighted_popularity_sums_decayed_weights() -> None:
    rows = np.array([0, 0, 1])
    times = np.array([T0, T0 + DAY, T0 + 2 * DAY])
    popularity, reference = decayed_popularity(rows, times, np.array([4.0, 2.0, 1.0]), 3, half_life_days=1.0)
    np.testing.assert_allclose(popularity, [4 * 0.25 + 2 * 0.5, 1.0, 0.0])
    assert reference == T0 + 2 * DAY


def test_bad_event_rows_follow_the_bad_row_policy(tmp_path: Path, encoder: Encoder) -> None:
    bad = EVENTS + "u4,m1,yesterday,1\n"  # line 8 of the CSV
    with pytest.raises(BadRowsError, match=r"events\.csv:8: timestamp: 'yesterday'"):
        _build(tmp_path, encoder, bad)
    assert not (tmp_path / "idx" / "CURRENT").exists()
    root, report = _build(tmp_path, encoder, bad, skip_bad_rows=True)
    assert (report.skipped_events, report.unknown_item_events) == (1, 1)
    assert any("skipped 1 bad row(s)" in m and "events.csv:8: timestamp" in m for m in report.messages)
    collection = Collection.load(root, encoder=encoder)
    try:
        assert collection.behaviour is not None and collection.behaviour.users == ["u1", "u2", "u3"]
    finally:
        collection.close()


def test_unchanged_inputs_reuse_trained_parts_and_changed_ones_retrain(
    tmp_path: Path, encoder: Encoder
) -> None:
    root, first = _build(tmp_path, encoder, EVENTS)
    _, second = _build(tmp_path, encoder, EVENTS)  # same items, same log
    v1, v2 = (root / "versions" / r.version for r in (first, second))
    for part in ("word2vec", "behaviour"):
        files = sorted(p.relative_to(v1 / part) for p in (v1 / part).rglob("*") if p.is_file())
        assert files, f"{part} was built"
        for name in files:  # copied byte for byte, not retrained
            assert (v1 / part / name).read_bytes() == (v2 / part / name).read_bytes(), name
    changed = EVENTS + f"u3,m1,{T0 + 3 * DAY},5\n"
    _, third = _build(tmp_path, encoder, changed)
    v3 = root / "versions" / third.version
    assert (v3 / "behaviour" / "rows.npy").read_bytes() != (v2 / "behaviour" / "rows.npy").read_bytes()
    assert (v3 / "word2vec" / "inputs.sha256").read_text() == (v2 / "word2vec" / "inputs.sha256").read_text()


def test_a_damaged_part_of_the_previous_version_is_rebuilt_not_copied(
    tmp_path: Path, encoder: Encoder
) -> None:
    root, first = _build(tmp_path, encoder, EVENTS)
    v1 = root / "versions" / first.version
    vectors = v1 / "word2vec" / "model" / "vectors.npy"
    damaged = bytearray(vectors.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    vectors.write_bytes(bytes(damaged))
    _, second = _build(tmp_path, encoder, EVENTS)  # same inputs: the part would be copied if it were sound
    v2 = root / "versions" / second.version
    assert (v2 / "word2vec" / "model" / "vectors.npy").read_bytes() != bytes(damaged)
    assert (v2 / "behaviour" / "rows.npy").read_bytes() == (v1 / "behaviour" / "rows.npy").read_bytes()
    Collection.load(root).close()  # the new version holds what its checksums say
