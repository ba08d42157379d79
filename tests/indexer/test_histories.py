"""One order of a user's events (the build's histories and the evaluation's split agree) and one meaning of a
request's recent items."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.behaviour import Behaviour, write_behaviour
from indexer.config import BehaviourConfig
from indexer.events import Events
from indexer.histories import recent_items, time_order
from jobs.evaluation.recommend import leave_last_out

# u1 rated "10", "9" and "2" in the same second, after "1": by item id (string order) that is 10, 2, 9.
LOG = [("u1", "9", 5), ("u2", "2", 1), ("u1", "1", 3), ("u1", "10", 5), ("u1", "2", 5), ("u2", "1", 1)]
IDS = ["1", "2", "9", "10"]


def _written(directory: Path, log: list[tuple[str, str, int]]) -> Behaviour:
    users, items, times = zip(*log, strict=True)
    events = Events(np.array(users), np.array(items), np.array(times, dtype=np.int64), None)
    row_of = {item: row for row, item in enumerate(IDS)}
    write_behaviour(directory / "behaviour", events, row_of, BehaviourConfig(item2vec=False))
    return Behaviour(directory / "behaviour")


def test_events_at_the_same_time_go_by_item_id_whatever_the_file_order(tmp_path: Path) -> None:
    users, items, times = (np.array(column) for column in zip(*LOG, strict=True))
    assert [LOG[i][:2] for i in time_order(users, items, times)] == [
        ("u1", "1"), ("u1", "10"), ("u1", "2"), ("u1", "9"), ("u2", "1"), ("u2", "2"),
    ]  # fmt: skip
    forward, backward = _written(tmp_path / "a", LOG), _written(tmp_path / "b", LOG[::-1])
    for behaviour in (forward, backward):
        assert [IDS[row] for row in behaviour.history("u1")[0]] == ["1", "10", "2", "9"]


def test_the_split_holds_out_what_the_build_calls_last(tmp_path: Path) -> None:
    split = leave_last_out([(user, item, float(time)) for user, item, time in LOG])
    built = _written(tmp_path, LOG)
    last_built = {user: IDS[built.history(user)[0][-1]] for user in ("u1", "u2")}
    assert split.held_out == last_built == {"u1": "9", "u2": "2"}


def test_recent_items_are_the_named_ones_else_the_users_history(tmp_path: Path) -> None:
    behaviour = _written(tmp_path, LOG)
    np.testing.assert_array_equal(recent_items(behaviour, "u1", (3, 1)), [3, 1])  # the request's own order
    np.testing.assert_array_equal(recent_items(behaviour, "u1"), behaviour.history("u1")[0])
    assert recent_items(behaviour, "stranger").size == recent_items(None, "u1").size == 0
    assert recent_items(behaviour, None).dtype == np.int64
