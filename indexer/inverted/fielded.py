"""Multi-field BM25: one InvertedIndex per field, score = sum over fields of boost * field BM25.

Each field keeps its own statistics (average length, idf), as in Lucene's per-field BM25 similarity;
the field scores are combined in float32 in field order, identically in :meth:`FieldedIndex.search` and
:meth:`FieldedIndex.score_rows`. Search is exact: it scores every document matching any query token.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from indexer.inverted.index import InvertedIndex, _check_k
from indexer.inverted.topk import EMPTY_ROWS, EMPTY_SCORES, top_k

_FIELDS_FILE = "fields.json"


class FieldedIndex:
    """Same search API as :class:`InvertedIndex` over documents given as ``{field: tokens}`` mappings."""

    def __init__(self, fields: dict[str, InvertedIndex], boosts: dict[str, float]) -> None:
        sizes = {len(index) for index in fields.values()}
        if len(sizes) != 1:
            raise ValueError(f"all fields must hold the same documents, got sizes {sorted(sizes)}")
        self._fields = fields
        self._boosts = {name: np.float32(boosts[name]) for name in fields}
        self._n = sizes.pop()
        self._local = threading.local()
        first = next(iter(fields.values())).params
        self.params: dict[str, Any] = {
            "method": first["method"],
            "k1": first["k1"],
            "b": first["b"],
            "n_docs": self._n,
            "fields": {name: {"boost": float(boosts[name]), **fields[name].params} for name in fields},
        }

    @classmethod
    def build(
        cls,
        docs: Iterable[Mapping[str, list[str]]],
        *,
        boosts: Mapping[str, float],
        k1: float = 1.5,
        b: float = 0.75,
        show_progress: bool = False,
    ) -> FieldedIndex:
        """Index the fields named in ``boosts`` (field -> weight > 0); a missing field counts as empty."""
        if not boosts:
            raise ValueError("boosts must name at least one field, got an empty mapping")
        for name, boost in boosts.items():
            if not (isinstance(boost, int | float) and math.isfinite(boost) and boost > 0):
                raise ValueError(f"boost of field {name!r} must be a finite number > 0, got {boost!r}")
        columns: dict[str, list[list[str]]] = {name: [] for name in boosts}
        for doc in docs:
            for name, column in columns.items():
                column.append(doc.get(name, []))
        fields = {}
        for name in list(columns):
            fields[name] = InvertedIndex.build(columns.pop(name), k1=k1, b=b, show_progress=show_progress)
        return cls(fields, dict(boosts))

    def __len__(self) -> int:
        return self._n

    def search(
        self, query_tokens: list[str], k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows and combined scores, best first, ties by lower row (see InvertedIndex.search)."""
        _check_k(k)
        first = next(iter(self._fields.values()))
        mask = first._check_allowed(allowed)
        acc = getattr(self._local, "acc", None)
        if acc is None:
            acc = self._local.acc = np.zeros(self._n, dtype=np.float32)
        touched = []
        try:
            for name, index in self._fields.items():
                rows, scores = index.matches(query_tokens)
                acc[rows] += self._boosts[name] * scores
                touched.append(rows)
            rows = np.unique(np.concatenate(touched)) if touched else EMPTY_ROWS
            if mask is not None:
                rows = rows[mask[rows]]
            if not len(rows):
                return EMPTY_ROWS.copy(), EMPTY_SCORES.copy()
            return top_k(rows, acc[rows], k)
        finally:
            for rows in touched:
                acc[rows] = 0

    def search_batch(self, queries: list[list[str]], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`search` for each query, in order."""
        return [self.search(query, k) for query in queries]

    def score_rows(self, query_tokens: list[str], rows: np.ndarray) -> np.ndarray:
        """Combined scores (float32) of the given rows."""
        out = np.zeros(len(np.asarray(rows)), dtype=np.float32)
        for name, index in self._fields.items():
            out += self._boosts[name] * index.score_rows(query_tokens, rows)
        return out

    def save(self, directory: Path) -> list[str]:
        """One sub-directory per field plus ``fields.json``; returns the written paths, relative."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, index in self._fields.items():
            written += [f"{name}/{file}" for file in index.save(directory / name)]
        with open(directory / _FIELDS_FILE, "w", encoding="utf-8") as f:
            json.dump({"boosts": {name: float(b) for name, b in self._boosts.items()}}, f, indent=2)
        return [*written, _FIELDS_FILE]

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = True) -> FieldedIndex:
        directory = Path(directory)
        with open(directory / _FIELDS_FILE, encoding="utf-8") as f:
            boosts = json.load(f)["boosts"]
        fields = {name: InvertedIndex.load(directory / name, mmap=mmap) for name in boosts}
        return cls(fields, boosts)
