"""Compute a declaration's features for one request: one float64 matrix (candidates x features).

`FeatureExtractor` is the single code path of training and serving: the training job calls `extract` on
the candidates the recall pipeline produced, the serving scorer calls it on the same kind of candidates, so
a feature cannot mean one thing offline and another online. Each feature is its calc op followed by its
transforms, vectorised over the whole candidate list; IO values are fetched once per request. A gated
feature is not computed at all when its branch found none of the request's candidates (the branch was gated
off, failed or missed its deadline): every candidate gets the declared `gated_value`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ranker.features.calc_ops import CALC_OPS
from ranker.features.collection import CollectionView, FeatureCollection
from ranker.features.declarations import FeatureDeclaration, FeatureSpec, require
from ranker.features.io_ops import Request
from ranker.features.transforms import TRANSFORMS
from ranker.scoring import Candidate, RankingContext, branches_found


class _Compiled:
    """A feature with its parameters resolved once, at load."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.name = spec.name
        self.op = CALC_OPS[spec.calc]
        self.params = spec.resolved_params()
        self.steps = [(TRANSFORMS[t.op], t.resolved()) for t in spec.transforms]
        self.gate, self.gated_value = spec.gate, spec.gated_value

    def __call__(self, request: Request) -> np.ndarray:
        if self.gate is not None and self.gate not in request.branches_present:
            return np.full(len(request), self.gated_value)
        values = np.asarray(self.op.compute(request, self.params), dtype=np.float64)
        for transform, params in self.steps:
            values = np.asarray(transform.apply(values, params), dtype=np.float64)
        if values.shape != (len(request),):
            raise RuntimeError(f"feature {self.name!r} gave shape {values.shape}, expected ({len(request)},)")
        return values


class FeatureExtractor:
    """A declaration bound to a collection; `require` has checked it can be computed there."""

    def __init__(
        self,
        declaration: FeatureDeclaration,
        collection: FeatureCollection | CollectionView,
        *,
        branches: Iterable[str] | None = None,
    ) -> None:
        self.view = collection if isinstance(collection, CollectionView) else CollectionView(collection)
        require(declaration, self.view, branches)
        self.declaration = declaration
        self.names = declaration.names
        self._features = [_Compiled(spec) for spec in declaration.features]

    def covers(self, candidates: Sequence[Candidate]) -> bool:
        """Whether every branch a feature is gated on found some candidate (the model's training regime)."""
        found = branches_found(candidates)
        return all(branch in found for branch in self.declaration.gates)

    def extract(self, context: RankingContext, candidates: Sequence[Candidate]) -> np.ndarray:
        """(len(candidates), len(names)) float64; row i belongs to candidates[i]."""
        request = Request(self.view, context, candidates)
        out = np.empty((len(candidates), len(self._features)), dtype=np.float64)
        for j, feature in enumerate(self._features):
            out[:, j] = feature(request)
        return out

    def as_dicts(self, matrix: np.ndarray) -> list[dict[str, float]]:
        return [dict(zip(self.names, row, strict=True)) for row in matrix.tolist()]

    def ids_of(self, candidates: Sequence[Candidate]) -> list[str]:
        return self.view.ids_of(
            np.fromiter((c.row for c in candidates), dtype=np.int64, count=len(candidates))
        )
