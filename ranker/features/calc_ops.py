"""Calc operators: one float64 value per candidate, computed from IO values (`ranker.features.io_ops`).

Each calc op (`CALC_OPS`) is a named function whose docstring is its documentation, the parameters it
accepts with their defaults (`REQUIRED` marks a mandatory one), and the IO inputs it reads (`Need`), so a
declaration can be checked against a collection before any request.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexer.geo import EARTH_RADIUS_KM, haversine_km
from ranker.features.io_ops import Request, unit

Params = dict[str, Any]
FARTHEST_KM = float(np.pi * EARTH_RADIUS_KM)  # half the circumference: "as far as it gets"
SECONDS_PER_DAY = 86_400.0
REQUIRED = object()


@dataclass(frozen=True)
class Need:
    """An IO input of a calc op: `op` with a fixed `arg`, or with the value of the calc op's `param`."""

    op: str
    arg: str | None = None
    param: str | None = None

    def resolve(self, params: Params) -> Need:
        """This input for a feature's parameters (the argument filled in)."""
        return Need(self.op, params[self.param]) if self.param is not None else Need(self.op, self.arg)


@dataclass(frozen=True)
class CalcOp:
    compute: Callable[[Request, Params], np.ndarray]
    reads: tuple[Need, ...] = ()
    defaults: Params = field(default_factory=dict)  # every allowed parameter; REQUIRED marks a mandatory one

    @property
    def doc(self) -> str:
        """What the feature is: the compute function's docstring."""
        return inspect.getdoc(self.compute) or ""

    def needs(self, params: Params) -> list[Need]:
        """The IO inputs a feature with `params` reads."""
        return [need.resolve(params) for need in self.reads]

    def branch(self, params: Params) -> str | None:
        """The recall branch this op reads provenance of, if any."""
        return params.get("branch") if "branch" in self.defaults else None


def _filled(values: np.ndarray, missing: float) -> np.ndarray:
    return np.where(np.isnan(values), float(missing), values)


def _terms(req: Request) -> list[str]:
    return list(req.get("query_terms").get(req.view.primary_analyzer, []))


# ------------------------------------------------------------------------------------------------- text
def bm25(req: Request, params: Params) -> np.ndarray:
    """Boosted multi-field BM25 of the query for the candidate."""
    return req.collection.inverted.score_rows(req.get("query_terms"), req.rows).astype(np.float64)


def field_bm25(req: Request, params: Params) -> np.ndarray:
    """BM25 of one field (unboosted), the query analysed by that field's analyzer."""
    bm25_field = req.get("bm25_field", params["field"])
    tokens = req.get("query_terms").get(bm25_field.analyzer, [])
    return bm25_field.index.score_rows(tokens, req.rows).astype(np.float64)


def term_overlap(req: Request, params: Params) -> np.ndarray:
    """Share of the distinct query terms (primary analyzer) present in the item, in any field of it."""
    terms = list(dict.fromkeys(_terms(req)))
    if not terms or not len(req):
        return np.zeros(len(req))
    fields = [f for f in req.collection.inverted.fields if f.analyzer == req.view.primary_analyzer]
    present = np.zeros((len(terms), len(req)), dtype=bool)
    for i, term in enumerate(terms):
        for f in fields:
            present[i] |= f.index.score_rows([term], req.rows) > 0
    return present.mean(axis=0)


def field_overlap(req: Request, params: Params) -> np.ndarray:
    """Share of the distinct query terms (primary analyzer) found in a stored text field of the item."""
    terms = set(_terms(req))
    if not terms:
        return np.zeros(len(req))
    return np.array([len(terms & item) / len(terms) for item in req.get("field_terms", params["field"])])


def query_length(req: Request, params: Params) -> np.ndarray:
    """Query terms (primary analyzer), the same for every candidate."""
    return np.full(len(req), float(len(_terms(req))))


def item_length(req: Request, params: Params) -> np.ndarray:
    """Item terms (primary analyzer); `relative`: divided by the primary field's mean document length."""
    lengths = req.get("item_lengths")
    if not params["relative"]:
        return lengths
    return lengths / max(float(req.collection.inverted.fields[0].index.params["avg_doc_len"]), 1e-9)


# ----------------------------------------------------------------------------------------------- vectors
def cosine(req: Request, params: Params) -> np.ndarray:
    """Cosine between the query and item vectors of a space (dense transformer or word2vec)."""
    space = params["space"]
    return (req.get("item_vectors", space) @ req.get("query_vector", space)).astype(np.float64)


def prf_cosine(req: Request, params: Params) -> np.ndarray:
    """Cosine between the item and the centroid of the first `top` candidates in the merged order
    (pseudo-relevance feedback: agreement with what the branches jointly rank highest)."""
    vectors = req.get("item_vectors", params["space"])
    if not len(vectors):
        return np.zeros(0)
    centroid = unit(vectors[: int(params["top"])].mean(axis=0))
    return (vectors @ centroid).astype(np.float64)


# -------------------------------------------------------------------------------------------- provenance
def branch_rank(req: Request, params: Params) -> np.ndarray:
    """1-based rank in a branch; `missing` (branch depth + 1) where the branch did not find it."""
    return _filled(req.get("branch_ranks", params["branch"]), params["missing"])


def branch_found(req: Request, params: Params) -> np.ndarray:
    """1 where the branch found the candidate, else 0."""
    return (~np.isnan(req.get("branch_ranks", params["branch"]))).astype(np.float64)


def branch_score(req: Request, params: Params) -> np.ndarray:
    """The branch's own score; `missing` where it did not find the candidate."""
    return _filled(req.get("branch_scores", params["branch"]), params["missing"])


def branch_count(req: Request, params: Params) -> np.ndarray:
    """Number of branches that found the candidate."""
    return np.array([len(c.ranks) for c in req.candidates], dtype=np.float64)


def fused(req: Request, params: Params) -> np.ndarray:
    """Fused score."""
    return req.get("fused_score")


# ------------------------------------------------------------------------------------------- attributes
def column(req: Request, params: Params) -> np.ndarray:
    """A numeric column of the item."""
    return _filled(req.get("column", params["name"]), params["missing"])


def popularity(req: Request, params: Params) -> np.ndarray:
    """Item popularity (behaviour-decayed when the collection has events)."""
    return _filled(req.get("popularity"), params["missing"])


def geo_distance(req: Request, params: Params) -> np.ndarray:
    """Great-circle km from the request's location to the item; `missing` without either."""
    location = req.context.location
    if location is None:
        return np.full(len(req), float(params["missing"]))
    distance = haversine_km(location[0], location[1], req.get("column", "lat"), req.get("column", "lon"))
    return np.where(np.isnan(distance), float(params["missing"]), distance)


# --------------------------------------------------------------------------------------------- behaviour
def category_preference(req: Request, params: Params) -> np.ndarray:
    """Share of the user's history events on items of the candidate's category (0 without history)."""
    history = req.get("user_history")
    codes = req.get("keyword_codes", params["field"])
    if not history.size:
        return np.zeros(len(req))
    all_codes = np.asarray(req.collection.keywords.fields[params["field"]].codes[history], dtype=np.int64)
    all_codes = all_codes[all_codes >= 0]
    if not all_codes.size:
        return np.zeros(len(req))
    counts = np.bincount(all_codes, minlength=int(max(all_codes.max(), codes.max(initial=0))) + 1)
    share = counts / len(history)
    return np.where(codes >= 0, share[np.maximum(codes, 0)], 0.0)


def tag_preference(req: Request, params: Params) -> np.ndarray:
    """Mean, over the candidate's values of a (multi-valued) keyword field, of the share of the user's
    history items holding that value (0 without history or values)."""
    history, matrix = req.get("user_history"), req.get("keyword_matrix", params["field"])
    if not history.size:
        return np.zeros(len(req))
    profile = np.asarray(matrix[history].sum(axis=0)).ravel() / len(history)
    candidates = matrix[req.rows]
    held = np.asarray(candidates.sum(axis=1)).ravel()
    total = np.asarray(candidates @ profile).ravel()
    return np.divide(total, held, out=np.zeros(len(req)), where=held > 0)


def item2vec_affinity(req: Request, params: Params) -> np.ndarray:
    """Cosine between the candidate's item2vec vector and the mean of the user's history vectors (the
    newest `last` of them; 0: all)."""
    history, vectors = req.get("user_history"), req.get("item2vec")
    if params["last"] > 0:
        history = history[-int(params["last"]) :]
    if not history.size:
        return np.zeros(len(req))
    profile = unit(np.asarray(vectors[history], dtype=np.float32).mean(axis=0))
    return np.asarray(vectors[req.rows], dtype=np.float32) @ profile


def time_gap(req: Request, params: Params) -> np.ndarray:
    """Days between the user's newest event and the middle (median) of the item's events: how far the
    item's audience is from the user's moment. `missing` without a user history or item events."""
    now = req.get("user_time")
    indptr, times = req.get("item_event_times")
    starts, stops = indptr[req.rows], indptr[req.rows + 1]
    middle = times[np.minimum((starts + stops) // 2, len(times) - 1)] if len(times) else np.zeros(len(req))
    gap = np.abs(middle.astype(np.float64) - now) / SECONDS_PER_DAY
    return np.where((stops > starts) & ~np.isnan(gap), gap, float(params["missing"]))


def events_near(req: Request, params: Params) -> np.ndarray:
    """Events on the item within `days` of the user's newest event (its popularity at the user's moment);
    0 without a user history."""
    now = req.get("user_time")
    if np.isnan(now):
        return np.zeros(len(req))
    indptr, times = req.get("item_event_times")
    window = float(params["days"]) * SECONDS_PER_DAY
    out = np.empty(len(req))
    for i, row in enumerate(req.rows.tolist()):
        span = times[indptr[row] : indptr[row + 1]]
        out[i] = np.searchsorted(span, now + window, "right") - np.searchsorted(span, now - window, "left")
    return out


def history_length(req: Request, params: Params) -> np.ndarray:
    """Items in the user's history (or the request's items), the same for every candidate."""
    return np.full(len(req), float(len(req.get("user_history"))))


HISTORY, TIMES = Need("user_history"), (Need("user_time"), Need("item_event_times"))
CALC_OPS: dict[str, CalcOp] = {
    "bm25": CalcOp(bm25, (Need("query_terms"),)),
    "field_bm25": CalcOp(
        field_bm25, (Need("query_terms"), Need("bm25_field", param="field")), {"field": REQUIRED}
    ),
    "cosine": CalcOp(
        cosine,
        (Need("query_vector", param="space"), Need("item_vectors", param="space")),
        {"space": "dense"},
    ),
    "term_overlap": CalcOp(term_overlap, (Need("query_terms"),)),
    "field_overlap": CalcOp(
        field_overlap, (Need("query_terms"), Need("field_terms", param="field")), {"field": REQUIRED}
    ),
    "prf_cosine": CalcOp(prf_cosine, (Need("item_vectors", param="space"),), {"space": "dense", "top": 5}),
    "query_length": CalcOp(query_length, (Need("query_terms"),)),
    "item_length": CalcOp(item_length, (Need("item_lengths"),), {"relative": False}),
    "branch_rank": CalcOp(
        branch_rank, (Need("branch_ranks", param="branch"),), {"branch": REQUIRED, "missing": 101.0}
    ),
    "branch_found": CalcOp(branch_found, (Need("branch_ranks", param="branch"),), {"branch": REQUIRED}),
    "branch_score": CalcOp(
        branch_score, (Need("branch_scores", param="branch"),), {"branch": REQUIRED, "missing": 0.0}
    ),
    "branch_count": CalcOp(branch_count),
    "fused": CalcOp(fused, (Need("fused_score"),)),
    "column": CalcOp(column, (Need("column", param="name"),), {"name": REQUIRED, "missing": 0.0}),
    "popularity": CalcOp(popularity, (Need("popularity"),), {"missing": 0.0}),
    "geo_distance": CalcOp(
        geo_distance, (Need("column", "lat"), Need("column", "lon")), {"missing": FARTHEST_KM}
    ),
    "category_preference": CalcOp(
        category_preference, (HISTORY, Need("keyword_codes", param="field")), {"field": "category"}
    ),
    "item2vec_affinity": CalcOp(item2vec_affinity, (HISTORY, Need("item2vec")), {"last": 0}),
    "tag_preference": CalcOp(
        tag_preference, (HISTORY, Need("keyword_matrix", param="field")), {"field": "tags"}
    ),
    "time_gap": CalcOp(time_gap, TIMES, {"missing": 36_500.0}),
    "events_near": CalcOp(events_near, TIMES, {"days": 30.0}),
    "history_length": CalcOp(history_length, (HISTORY,)),
}
