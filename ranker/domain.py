"""A ranker's domain: what the requests it was trained on looked like, and whether a new one does.

A model trained on one collection's queries can be confidently wrong on requests unlike them (queries of
another length, another language, candidates whose scores are spread differently). A `DomainProfile`
records, for each request-level statistic, the central range of its training values; a served request with
too many statistics outside those ranges is answered in the fusion order instead, and says why.

The statistics are the per-request mean of every feature the model reads (its features are mostly
normalised within the request, so their means describe the request's shape, not the collection's scale) and
the number of candidates. The range of a statistic is its [`LOW_QUANTILE`, `HIGH_QUANTILE`] over the
training requests, widened on each side by `MARGIN` times that range. How many statistics may fall outside
(`max_outside`) is chosen on the validation requests, which the ranges were not computed from: the
smallest number that refuses at most `REFUSED_SHARE` of them. So a ranker serves about 98% of requests like
its own, and none of the calibration constants is fitted to any one collection.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

LOW_QUANTILE, HIGH_QUANTILE = 0.01, 0.99
MARGIN = 0.1
REFUSED_SHARE = 0.02
CANDIDATES = "candidates"


def request_statistics(names: Sequence[str], matrix: np.ndarray) -> dict[str, float]:
    """The statistics of one request: each feature's mean over the candidates, and the candidate count."""
    means = matrix.mean(axis=0) if len(matrix) else np.zeros(len(names))
    stats = {f"mean:{name}": float(value) for name, value in zip(names, means.tolist(), strict=True)}
    stats[CANDIDATES] = float(np.log1p(len(matrix)))
    return stats


class DomainProfile(BaseModel):
    """Per statistic the range of the training requests, and how many may fall outside it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: dict[str, float] = Field(description="Lower end of each statistic's accepted range.")
    high: dict[str, float] = Field(description="Upper end of each statistic's accepted range.")
    max_outside: int = Field(ge=0, description="A request with more statistics outside is refused.")
    refused_valid_share: float = Field(description="Share of validation requests that would be refused.")

    @classmethod
    def fit(
        cls, names: Sequence[str], train: Sequence[np.ndarray], valid: Sequence[np.ndarray]
    ) -> DomainProfile:
        """Ranges from the `train` requests' feature matrices, `max_outside` calibrated on `valid`'s."""
        if not train:
            raise ValueError("a domain profile needs at least one training request")
        rows = [request_statistics(names, m) for m in train]
        keys = list(rows[0])
        values = np.array([[row[key] for key in keys] for row in rows], dtype=np.float64)
        lo, hi = np.quantile(values, [LOW_QUANTILE, HIGH_QUANTILE], axis=0)
        spread = hi - lo
        informative = spread > 0  # a statistic that never varied in training tells nothing
        low = {
            k: float(v) for k, v, keep in zip(keys, lo - MARGIN * spread, informative, strict=True) if keep
        }
        high = {
            k: float(v) for k, v, keep in zip(keys, hi + MARGIN * spread, informative, strict=True) if keep
        }
        profile = cls(low=low, high=high, max_outside=len(low), refused_valid_share=0.0)
        counts = np.array([len(profile.outside(names, m)) for m in (valid or train)])
        for allowed in range(len(low) + 1):
            share = float((counts > allowed).mean())
            if share <= REFUSED_SHARE:
                return profile.model_copy(update={"max_outside": allowed, "refused_valid_share": share})
        return profile  # pragma: no cover - allowed == len(low) refuses nothing

    def outside(self, names: Sequence[str], matrix: np.ndarray) -> list[str]:
        """The statistics of this request that fall outside their training range."""
        stats = request_statistics(names, matrix)
        return [
            key for key, low in self.low.items() if key in stats and not low <= stats[key] <= self.high[key]
        ]

    def refusal(self, names: Sequence[str], matrix: np.ndarray) -> str | None:
        """Why this request is outside the ranker's domain, or None when it is inside."""
        outside = self.outside(names, matrix)
        if len(outside) <= self.max_outside:
            return None
        shown = ", ".join(outside[:5]) + (", ..." if len(outside) > 5 else "")
        return (
            f"out of domain: {len(outside)} of {len(self.low)} request statistics outside the training "
            f"range (at most {self.max_outside} allowed): {shown}"
        )
