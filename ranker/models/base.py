"""What every ranking model shares: grouped training data, the model protocol, list-wise nDCG.

`Groups` holds many ranked lists (one per query or context) as one feature matrix with group offsets, the
graded labels of each candidate, and per group the ideal gains from *all* its judgments, so nDCG here is
trec_eval's: a list whose relevant items recall missed scores 0 rather than being skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

import numpy as np

from ranker.metrics import METRICS, Judged

SELECTION_METRIC = "valid_ndcg@10"  # what model selection, and every model's `fit`, report and compare


@dataclass
class Groups:
    features: np.ndarray  # (N, F) float64
    labels: np.ndarray  # (N,) int64 relevance grade, 0 when unjudged
    offsets: np.ndarray  # (Q + 1,) int64: group q is rows offsets[q]:offsets[q + 1]
    ideal: list[np.ndarray]  # per group: positive grades of every judged item, highest first
    keys: list[str]  # per group: its query (or context) id

    @classmethod
    def stack(
        cls,
        keys: Sequence[str],
        features: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        ideal: Sequence[np.ndarray],
        n_features: int,
    ) -> Groups:
        sizes = [len(f) for f in features]
        offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        matrix = np.concatenate(features) if features else np.zeros((0, n_features))
        grades = np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, dtype=np.int64)
        return cls(matrix.reshape(-1, n_features), grades, offsets, list(ideal), list(keys))

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def slices(self) -> list[slice]:
        return [slice(int(a), int(b)) for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)]


def ndcg_of_scores(scores: np.ndarray, labels: np.ndarray, ideal: np.ndarray, k: int = 10) -> float:
    """nDCG@k of candidates ordered by score (ties keep candidate order, as the pipeline's stable sort),
    with `ranker.metrics`' (trec_eval's) definition."""
    ideal = np.asarray(ideal, dtype=np.float64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    grades = np.asarray(labels)[order]
    return METRICS["ndcg"](grades, Judged(num_relevant=int((ideal > 0).sum()), ideal_gains=ideal), k)


def mean_ndcg(groups: Groups, scores: np.ndarray, k: int = 10) -> float:
    """Mean nDCG@k over every group (0 for a group without a relevant candidate)."""
    if not len(groups):
        return 0.0
    values = [
        ndcg_of_scores(scores[s], groups.labels[s], groups.ideal[q], k) for q, s in enumerate(groups.slices())
    ]
    return float(np.mean(values))


class RankingModel(Protocol):
    kind: ClassVar[str]

    def fit(self, train: Groups, valid: Groups, *, seed: int) -> dict[str, Any]:
        """Train with early stopping on `valid`; return what to record (iterations, best epoch, ...)."""
        ...

    def predict(self, features: np.ndarray) -> np.ndarray:
        """One score per row, higher is better."""
        ...

    def save(self, directory: Path) -> list[str]: ...

    @property
    def n_features(self) -> int: ...

    @classmethod
    def load(cls, directory: Path) -> Self: ...
