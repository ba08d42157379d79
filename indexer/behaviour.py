"""Behaviour artifacts: per-user histories, time-decayed item popularity and item2vec vectors.

Written under ``behaviour/`` of a version:

- ``users.json``: external user ids, sorted; user ``u`` owns ``rows[indptr[u]:indptr[u + 1]]``.
- ``indptr.npy`` (int64), ``rows.npy`` (int32 item rows), ``timestamps.npy`` (int64 epoch seconds),
  ``weights.npy`` (float32; 1 when the log has no weight column): each user's events oldest first, in
  `indexer.histories.time_order` (events at the same time by item id).
- ``popularity.npy`` (float64 per item row): ``sum(w * 0.5 ** ((t_ref - t) / half_life))`` over the item's
  events, ``w`` = 1 (or the event weight with ``weighted_popularity``), ``t_ref`` = the newest event's time
  (not the build time, so rebuilding the same log gives the same numbers). ``counts.npy``: raw event counts.
- ``item2vec/``: the trained vectors by item id, their vocabulary and training parameters (``.npy`` and
  JSON, `indexer.word2vec.save_vectors`; the online side reads only what follows), plus
  ``item_vectors.npy`` (float32 (n_items, dim), L2-normalised, zero for items no user sequence held) and
  ``known.npy`` (bool per item row).
- ``params.json``: counts, the half-life, ``t_ref`` and what item2vec was trained on.

Events naming items outside the catalogue are dropped and counted (``unknown_item_events``), never fatal.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from indexer.config import BehaviourConfig
from indexer.events import Events
from indexer.histories import time_order
from indexer.word2vec import item_vectors, save_vectors, train_item2vec

PARAMS_FILE = "params.json"
SECONDS_PER_DAY = 86_400.0
MAX_DOUBLINGS = 1000.0  # an added event far newer than the reference still counts finitely


def decayed_popularity(
    rows: np.ndarray, timestamps: np.ndarray, weights: np.ndarray, n_items: int, half_life_days: float
) -> tuple[np.ndarray, int | None]:
    """Per-item sum of weights halved every `half_life_days` before the newest event; and that time."""
    if len(rows) == 0:
        return np.zeros(n_items, dtype=np.float64), None
    reference = int(timestamps.max())
    age_days = (reference - timestamps.astype(np.float64)) / SECONDS_PER_DAY
    decayed = weights.astype(np.float64) * np.exp2(-age_days / half_life_days)
    return np.bincount(rows, weights=decayed, minlength=n_items), reference


def write_behaviour(
    directory: Path, events: Events, row_of: Mapping[str, int], config: BehaviourConfig
) -> dict:
    """Write every behaviour artifact for `events` over the items in `row_of`; return the params written."""
    directory = Path(directory)
    directory.mkdir(parents=True)
    known = np.fromiter((i in row_of for i in events.item_ids), dtype=bool, count=len(events))
    unknown_ids = set(events.item_ids[~known].tolist())
    users, item_ids = events.user_ids[known], events.item_ids[known]
    times = events.timestamps[known]
    weights = events.weights[known] if events.weights is not None else np.ones(len(users), np.float32)
    order = time_order(users, item_ids, times)
    users, item_ids, times, weights = users[order], item_ids[order], times[order], weights[order]
    rows = np.fromiter((row_of[i] for i in item_ids), dtype=np.int32, count=len(item_ids))
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.zeros(0, np.int64)
    indptr = np.r_[starts, len(users)].astype(np.int64)
    user_list = users[starts].tolist()
    (directory / "users.json").write_text(json.dumps(user_list, ensure_ascii=False), encoding="utf-8")
    for name, array in (("indptr", indptr), ("rows", rows), ("timestamps", times), ("weights", weights)):
        np.save(directory / f"{name}.npy", array)
    n_items = len(row_of)
    pop_weights = weights if config.weighted_popularity else np.ones(len(rows), dtype=np.float32)
    popularity, reference = decayed_popularity(rows, times, pop_weights, n_items, config.half_life_days)
    np.save(directory / "popularity.npy", popularity)
    np.save(directory / "counts.npy", np.bincount(rows, minlength=n_items).astype(np.int64))
    params = {
        "n_events": len(rows),
        "n_users": len(user_list),
        "unknown_item_events": int((~known).sum()),
        "unknown_items": len(unknown_ids),
        "unknown_item_examples": sorted(unknown_ids)[:10],
        "half_life_days": config.half_life_days,
        "weighted_popularity": config.weighted_popularity,
        "reference_time": reference,
        "item2vec": _item2vec(directory / "item2vec", item_ids, indptr, row_of, config),
    }
    (directory / PARAMS_FILE).write_text(json.dumps(params, indent=2, ensure_ascii=False), encoding="utf-8")
    return params


def _item2vec(
    directory: Path,
    item_ids: np.ndarray,
    indptr: np.ndarray,
    row_of: Mapping[str, int],
    config: BehaviourConfig,
) -> dict:
    if not config.item2vec:
        return {"trained": False, "reason": "disabled in the configuration"}
    sequences = [
        item_ids[s:e].tolist() for s, e in itertools.pairwise(indptr) if e - s >= config.min_sequence
    ]
    if not sequences:
        return {"trained": False, "reason": f"no user has {config.min_sequence} or more events"}
    kv = train_item2vec(sequences, config.item2vec_params)
    save_vectors(directory, kv, config.item2vec_params)
    ids = sorted(row_of, key=row_of.__getitem__)
    vectors, present = item_vectors(ids, kv)
    np.save(directory / "item_vectors.npy", vectors)
    np.save(directory / "known.npy", present)
    return {
        "trained": True,
        "params": config.item2vec_params.model_dump(),
        "sequences": len(sequences),
        "items_with_vectors": int(present.sum()),
    }


class Behaviour:
    """Read access to what `write_behaviour` wrote (arrays memory-mapped), plus the events added since the
    build (`add_events`: the service's real-time writes), which histories and popularity include.

    Added events live in this process's memory. A history merges them with the built events in
    `indexer.histories.time_order` (by time, then item id; `item_ids` names the rows for that, without it
    ties go by row). Popularity adds each one as the build would have, decayed
    to the build's reference time (``w * 0.5 ** ((t_ref - t) / half_life)``, above ``w`` for an event newer
    than the reference), so built and added events stay on one scale. `added_pairs` lists the user-item pairs
    they add (co-visitation counts them). The item2vec vectors and raw `counts` are not updated until the
    next build.
    """

    def __init__(self, directory: Path, item_ids: Sequence[str] | None = None) -> None:
        self.directory = Path(directory)
        self.item_ids = item_ids  # external id of each item row, for the tie order of merged histories
        self.params: dict = json.loads((self.directory / PARAMS_FILE).read_text(encoding="utf-8"))
        self.users: list[str] = json.loads((self.directory / "users.json").read_text(encoding="utf-8"))
        self.indptr, self.rows = self._array("indptr"), self._array("rows")
        self.timestamps, self.weights = self._array("timestamps"), self._array("weights")
        self.popularity, self.counts = self._array("popularity"), self._array("counts")
        vectors = self.directory / "item2vec" / "item_vectors.npy"
        self.item_vectors: np.ndarray | None = np.load(vectors, mmap_mode="r") if vectors.is_file() else None
        known = self.directory / "item2vec" / "known.npy"
        self.item_known: np.ndarray | None = np.load(known, mmap_mode="r") if known.is_file() else None
        self._added: dict[str, list[tuple[int, int, float]]] = {}  # user -> [(row, timestamp, weight)]
        self.added_events = 0
        # The user-item pairs the added events hold beyond the built ones (`added_pairs`), kept as they come.
        self._pair_users: list[int] = []
        self._pair_rows: list[int] = []
        self._pairs: set[tuple[int, int]] = set()
        self._strangers: dict[str, int] = {}  # a user the build never saw -> its number
        self._built_rows: dict[str, set[int]] = {}  # a built user with added events -> its built item rows

    def _array(self, name: str) -> np.ndarray:
        return np.load(self.directory / f"{name}.npy", mmap_mode="r")

    @cached_property
    def _user_index(self) -> dict[str, int]:
        return {user: i for i, user in enumerate(self.users)}

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._user_index or user_id in self._added

    def history(self, user_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item rows, timestamps, weights) of the user's events, built and added, in `time_order`; empty
        for an unknown user."""
        u = self._user_index.get(user_id)
        if u is None:
            rows, times, weights = np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.float32)
        else:
            s, e = int(self.indptr[u]), int(self.indptr[u + 1])
            rows, times = np.asarray(self.rows[s:e]), np.asarray(self.timestamps[s:e])
            weights = np.asarray(self.weights[s:e])
        added = self._added.get(user_id)
        if not added:
            return rows, times, weights
        rows = np.concatenate([rows, np.array([a[0] for a in added], dtype=np.int32)])
        times = np.concatenate([times, np.array([a[1] for a in added], dtype=np.int64)])
        weights = np.concatenate([weights, np.array([a[2] for a in added], dtype=np.float32)])
        ties = rows if self.item_ids is None else np.array([self.item_ids[row] for row in rows.tolist()])
        order = time_order(np.zeros(len(rows), dtype=np.int8), ties, times)
        return rows[order], times[order], weights[order]

    def added_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(user number, item row) of each user-item pair the added events hold and the built events do not,
        once each, in the order added: a built user numbered by its place in `users`, a user the build never
        saw after them, in the order it was first added. What a user-item matrix built from all events would
        hold in addition to one built from the built events."""
        n = len(self._pair_rows)  # `add_events` appends the user first: both lists hold n pairs
        return np.array(self._pair_users[:n], dtype=np.int64), np.array(self._pair_rows[:n], dtype=np.int64)

    def _add_pair(self, user: str, row: int) -> None:
        """Note (user, row) in `added_pairs` unless the build or an earlier added event holds it."""
        number = self._user_index.get(user)
        if number is None:
            number = self._strangers.setdefault(user, len(self.users) + len(self._strangers))
        elif user not in self._built_rows:
            start, end = int(self.indptr[number]), int(self.indptr[number + 1])
            self._built_rows[user] = set(np.asarray(self.rows[start:end]).tolist())
        if row in self._built_rows.get(user, ()) or (number, row) in self._pairs:
            return
        self._pairs.add((number, row))
        self._pair_users.append(number)
        self._pair_rows.append(row)

    def add_events(
        self, users: list[str], rows: list[int], timestamps: list[int], weights: list[float]
    ) -> None:
        """Add events after the build: each user's history and the items' popularity include them."""
        if not users:
            return
        if not self.popularity.flags.writeable:  # the first added event: a private copy to add into
            self.popularity = np.array(self.popularity, dtype=np.float64)
        reference = self.params.get("reference_time")
        half_life_s = float(self.params["half_life_days"]) * SECONDS_PER_DAY
        weighted = bool(self.params.get("weighted_popularity"))
        for user, row, timestamp, weight in zip(users, rows, timestamps, weights, strict=True):
            self._added.setdefault(user, []).append((int(row), int(timestamp), float(weight)))
            self._add_pair(user, int(row))
            halvings = 0.0 if reference is None else (reference - timestamp) / half_life_s
            self.popularity[row] += (weight if weighted else 1.0) * 2.0 ** min(-halvings, MAX_DOUBLINGS)
        self.added_events += len(users)
