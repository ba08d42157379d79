"""Transformers: map one feature vector (a value per candidate of one request) to another.

Elementwise ones (`log1p`, `clip`, `bucketize`, `reciprocal`, `scale`, `fill_missing`) depend on the value
alone. Per-request ones (`minmax`, `zscore`, `max_ratio`, `gap_to_max`, `rank`) normalise against the
request's candidate list, which keeps a feature comparable across collections whose raw magnitudes differ
(BM25 on 5k English abstracts against 1k Chinese sentences).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Params = dict[str, Any]


@dataclass(frozen=True)
class Transform:
    apply: Callable[[np.ndarray, Params], np.ndarray]
    defaults: Params = field(default_factory=dict)
    doc: str = ""


def _log1p(x: np.ndarray, p: Params) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _bucketize(x: np.ndarray, p: Params) -> np.ndarray:
    edges = np.asarray(p["edges"], dtype=np.float64)
    if edges.ndim != 1 or edges.size == 0 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bucketize edges must be a non-empty increasing list, got {p['edges']!r}")
    return np.searchsorted(edges, x, side="right").astype(np.float64)


def _minmax(x: np.ndarray, p: Params) -> np.ndarray:
    if not x.size:
        return x
    low, high = float(x.min()), float(x.max())
    return (x - low) / (high - low) if high - low > 1e-12 else np.full_like(x, float(p["constant"]))


def _zscore(x: np.ndarray, p: Params) -> np.ndarray:
    if not x.size:
        return x
    std = float(x.std())
    return (x - float(x.mean())) / std if std > 1e-12 else np.zeros_like(x)


def _max_ratio(x: np.ndarray, p: Params) -> np.ndarray:
    top = float(x.max()) if x.size else 0.0
    return x / top if top > 1e-12 else np.zeros_like(x)


def _rank(x: np.ndarray, p: Params) -> np.ndarray:
    """1-based rank within the request, highest value first, ties sharing the best rank."""
    if not x.size:
        return x
    order = np.sort(-x)
    return (np.searchsorted(order, -x, side="left") + 1).astype(np.float64)


TRANSFORMS: dict[str, Transform] = {
    "log1p": Transform(_log1p, doc="sign(x) * log(1 + |x|)."),
    "clip": Transform(lambda x, p: np.clip(x, p["lo"], p["hi"]), {"lo": -np.inf, "hi": np.inf}, "Clip."),
    "bucketize": Transform(_bucketize, {"edges": None}, "Index of the bucket between sorted `edges`."),
    "reciprocal": Transform(lambda x, p: 1.0 / (float(p["k"]) + x), {"k": 60.0}, "1 / (k + x), e.g. RRF."),
    "scale": Transform(lambda x, p: x * float(p["factor"]), {"factor": 1.0}, "x * factor."),
    "fill_missing": Transform(
        lambda x, p: np.where(np.isnan(x), float(p["value"]), x), {"value": 0.0}, "NaN -> value."
    ),
    "minmax": Transform(_minmax, {"constant": 1.0}, "(x - min) / (max - min) over the request."),
    "zscore": Transform(_zscore, doc="(x - mean) / std over the request; 0 when constant."),
    "max_ratio": Transform(_max_ratio, doc="x / max over the request; 0 when the max is not positive."),
    "gap_to_max": Transform(lambda x, p: (x.max() - x) if x.size else x, doc="max over the request - x."),
    "rank": Transform(_rank, doc=str(_rank.__doc__)),
}
