"""Feature logging: what the serving ranker computed, one JSON line per request, and reading it back.

A line holds the request id, the query context (with the ids of a recommendation request's items), the
collection and ranker versions, the feature names, and per candidate its external id, provenance (per-branch
rank and score, fused score) and feature values. That is enough to rebuild the request offline
(`LoggedRequest.context_in`, `LoggedRequest.candidates`) and recompute its features with the training code
path, which is how online/offline consistency is checked, and to train on served traffic.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

import numpy as np

from ranker.features.collection import CollectionView
from ranker.scoring import Candidate, RankingContext

# What every log line holds; anything else on a line is the logger's `meta` (ranker and collection versions).
LOGGED_KEYS = frozenset(
    {"request_id", "time", "query", "user_id", "location", "items", "names", "candidates", "features"}
)


@dataclass
class LoggedRequest:
    request_id: str
    context: RankingContext
    ids: list[str]
    provenance: list[dict[str, Any]]
    names: list[str]
    features: np.ndarray
    meta: dict[str, Any]
    items: list[str] = field(default_factory=list)  # ids of the items a recommendation request named

    def context_in(self, view: CollectionView) -> RankingContext:
        """The request's context, its named items turned into rows of `view`'s collection."""
        if not self.items:
            return self.context
        return dataclasses.replace(self.context, items=tuple(view.rows_of(self.items).tolist()))

    def candidates(self, view: CollectionView) -> list[Candidate]:
        """The request's candidates as the scorer saw them (rows looked up from the external ids)."""
        rows = view.rows_of(self.ids).tolist()
        return [
            Candidate(row, p["fused"], dict(p["ranks"]), dict(p["scores"]))
            for row, p in zip(rows, self.provenance, strict=True)
        ]


MAX_BYTES = 256 * 1024 * 1024
BACKUPS = 5


class _RotatingLines(RotatingFileHandler):
    """The standard library's size-based rotation, raising what it cannot write instead of printing it."""

    def handleError(self, record: logging.LogRecord) -> None:
        raise  # called from within `emit`'s except block: re-raise the write error to the caller


class FeatureLogger:
    """Appends one JSON line per scored request to `path`; safe to share between request threads.

    Rotation is `logging.handlers.RotatingFileHandler`'s: when a line would take the file to `max_bytes` or
    beyond it is rotated first (`path` -> `path.1` -> ... -> `path.<backups>`, the oldest dropped), so a
    long-running service keeps a bounded amount of log. Server worker processes may share one log: each
    write (size check, rotation, append) holds an exclusive `flock` on a hidden lock file beside it
    (`.<name>.lock`) and reopens the file, so two processes never rotate at once and none appends to a file
    another one has rotated away.
    """

    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        if max_bytes < 1 or backups < 1:
            raise ValueError(f"max_bytes and backups must be positive, got {max_bytes}, {backups}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.backups = max_bytes, backups
        self._handler = _RotatingLines(
            self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
        )
        self._lock = threading.Lock()
        self._lock_path = self.path.with_name(f".{self.path.name}.lock")

    def _write(self, line: str) -> None:
        """Append `line` (no newline), rotating first when it would reach `max_bytes`."""
        record = logging.makeLogRecord({"msg": line})
        with self._lock, self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the lock file closes
            try:
                self._handler.emit(record)
            finally:
                self._handler.close()  # the next write reopens `path`, wherever another process left it

    def log(
        self,
        context: RankingContext,
        ids: Sequence[str],
        candidates: Sequence[Candidate],
        names: Sequence[str],
        features: np.ndarray,
        *,
        items: Sequence[str] = (),
        **meta: Any,
    ) -> str:
        """Write one request; return its request id (the context's, or a new one). `items`: the ids of
        the context's items (a recommendation request's own list)."""
        request_id = context.request_id or uuid.uuid4().hex
        record = {
            "request_id": request_id,
            "time": time.time(),
            "query": context.text,
            "user_id": context.user_id,
            "location": list(context.location) if context.location is not None else None,
            "items": list(items),
            **meta,
            "names": list(names),
            "candidates": [
                {
                    "id": item_id,
                    "fused": float(c.fused_score),
                    "ranks": {k: int(v) for k, v in c.ranks.items()},
                    "scores": {k: float(v) for k, v in c.branch_scores.items()},
                }
                for item_id, c in zip(ids, candidates, strict=True)
            ],
            "features": features.tolist(),  # float64 -> shortest repr that round-trips exactly
        }
        self._write(json.dumps(record, ensure_ascii=False, allow_nan=True))
        return request_id


def read_feature_log(path: Path) -> Iterator[LoggedRequest]:
    """Every request of a feature log, in file order."""
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                location = record.get("location")
                context = RankingContext(
                    text=record["query"],
                    user_id=record.get("user_id"),
                    location=(location[0], location[1]) if location else None,
                    request_id=record["request_id"],
                )
                candidates = record["candidates"]
                names = record["names"]
                features = np.asarray(record["features"], dtype=np.float64).reshape(
                    len(candidates), len(names)
                )
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{path}:{number}: not a feature log line ({error})") from None
            yield LoggedRequest(
                request_id=record["request_id"],
                context=context,
                ids=[c["id"] for c in candidates],
                provenance=candidates,
                names=names,
                features=features,
                meta={k: v for k, v in record.items() if k not in LOGGED_KEYS},
                items=list(record.get("items") or []),
            )
