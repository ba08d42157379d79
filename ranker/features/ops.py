"""Feature operators: IO ops fetch raw values, calc ops compute one value per candidate from them.

IO ops (`IO_OPS`) read what a request and the collection hold: the analysed query, query and item vectors,
the candidates' provenance (per-branch rank and score, fused score), numeric columns, keyword codes, item
lengths, the user's history. A request memoises every IO value, so two features reading the query vector
encode the query once. Each IO op also says whether a collection can serve it (`check`: None, or why not).

Calc ops (`CALC_OPS`) turn IO values into a float64 vector over the request's candidates. They name the IO
inputs they read (`needs`), so a declaration can be checked against a collection before any request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from indexer.geo import EARTH_RADIUS_KM, haversine_km
from ranker.features.collection import CollectionView, vectors_available
from ranker.scoring import RankingContext, Scoreable, branches_found

SPACES = ("dense", "word2vec")
FARTHEST_KM = float(np.pi * EARTH_RADIUS_KM)  # half the circumference: "as far as it gets"


class Request:
    """One request's candidates and memoised IO values."""

    def __init__(
        self, view: CollectionView, context: RankingContext, candidates: Sequence[Scoreable]
    ) -> None:
        self.view = view
        self.collection = view.collection
        self.context = context
        self.candidates = candidates
        self.rows = np.fromiter((c.row for c in candidates), dtype=np.int64, count=len(candidates))
        self._memo: dict[tuple[str, str | None], Any] = {}
        self._records: dict[int, dict | None] = {}

    def __len__(self) -> int:
        return len(self.rows)

    @cached_property
    def branches_present(self) -> set[str]:
        """The branches that found at least one of the candidates."""
        return branches_found(self.candidates)

    def records(self, rows: Sequence[int]) -> list[dict | None]:
        """Docstore records of candidate rows, each read at most once per request: on first sight of an
        item, its length and its title's terms both need its record."""
        missing = [row for row in dict.fromkeys(rows) if row not in self._records]
        if missing:
            self._records.update(zip(missing, self.view.records(missing), strict=True))
        return [self._records[row] for row in rows]

    def get(self, op: str, arg: str | None = None) -> Any:
        key = (op, arg)
        if key not in self._memo:
            self._memo[key] = IO_OPS[op].fetch(self, arg)
        return self._memo[key]


@dataclass(frozen=True)
class IoOp:
    fetch: Callable[[Request, str | None], Any]
    check: Callable[[CollectionView, str | None], str | None] = lambda view, arg: None


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


def _vector_index(view: CollectionView, space: str | None) -> Any:
    if space == "dense":
        return view.collection.vectors
    text_vectors = view.collection.text_vectors
    return text_vectors.index if text_vectors is not None else None


def _check_space(view: CollectionView, space: str | None) -> str | None:
    if space not in SPACES:
        return f"unknown vector space {space!r}; choose one of {list(SPACES)}"
    if space == "word2vec" and view.collection.text_vectors is None:
        return "the collection has no Word2Vec vectors"
    if space == "dense" and getattr(view.collection, "encoder", None) is None:
        return "the collection has no query encoder"
    problem = vectors_available(_vector_index(view, space))
    return f"{space} vectors: {problem}" if problem else None


def _query_vector(req: Request, space: str | None) -> np.ndarray:
    known = (req.context.query_vectors or {}).get(space or "")
    if known is not None:
        return _unit(np.asarray(known, dtype=np.float32).reshape(-1))
    if space == "dense":
        vector = req.collection.encoder.encode_queries([req.context.text])[0]  # the query form (E5)
        return _unit(np.asarray(vector, dtype=np.float32))
    return _unit(np.asarray(req.collection.text_vectors.embed(req.context.text), dtype=np.float32))


def _item_vectors(req: Request, space: str | None) -> np.ndarray:
    return req.view.unit_vectors(space or "", _vector_index(req.view, space), req.rows)


def _provenance(attribute: str) -> Callable[[Request, str | None], np.ndarray]:
    def fetch(req: Request, branch: str | None) -> np.ndarray:
        return np.array([getattr(c, attribute).get(branch, np.nan) for c in req.candidates], dtype=np.float64)

    return fetch


def _column(req: Request, name: str | None) -> np.ndarray:
    return np.asarray(req.collection.columns[name or ""][req.rows], dtype=np.float64)


def _check_column(view: CollectionView, name: str | None) -> str | None:
    if (name or "") not in view.collection.columns:
        return f"no numeric column {name!r}; the collection has {sorted(view.collection.columns)}"
    return None


def _popularity(req: Request, _: str | None) -> np.ndarray:
    popularity = req.collection.popularity
    assert popularity is not None  # `_check_popularity` refused the declaration otherwise
    return np.asarray(popularity[req.rows], dtype=np.float64)


def _check_popularity(view: CollectionView, _: str | None) -> str | None:
    return None if view.collection.popularity is not None else "the collection has no popularity"


def _check_behaviour(view: CollectionView, _: str | None) -> str | None:
    return None if view.collection.behaviour else "the collection has no behaviour"


def _check_keyword_codes(view: CollectionView, name: str | None) -> str | None:
    fields = view.collection.keywords.fields
    if name not in fields:
        return f"no keyword field {name!r}; the collection has {sorted(fields)}"
    if fields[name].codes is None:
        return f"keyword field {name!r} holds several values per item"
    return None


def _user_history(req: Request, _: str | None) -> np.ndarray:
    """Rows of the request's items when it names some, else the user's history; oldest first (as the
    behaviour branches read it)."""
    if req.context.items:
        return np.asarray(req.context.items, dtype=np.int64)
    behaviour, user = req.collection.behaviour, req.context.user_id
    if behaviour is None or user is None:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(behaviour.history(user)[0], dtype=np.int64)


def _user_time(req: Request, _: str | None) -> float:
    """Time (epoch seconds) of the user's newest event: "now" for that user; NaN without a history."""
    behaviour, user = req.collection.behaviour, req.context.user_id
    if behaviour is None or user is None:
        return float("nan")
    times = behaviour.history(user)[1]
    return float(np.max(times)) if len(times) else float("nan")


def _check_field(view: CollectionView, name: str | None) -> str | None:
    names = [f.name for f in view.collection.inverted.fields]
    return None if name in names else f"no BM25 field {name!r}; the collection has {names}"


def _item2vec(view: CollectionView) -> np.ndarray | None:
    behaviour = view.collection.behaviour
    return None if behaviour is None else behaviour.item_vectors


IO_OPS: dict[str, IoOp] = {
    # The terms the BM25 branch searched with (a long query pruned the same way).
    "query_terms": IoOp(lambda req, _: req.collection.inverted.query_terms(req.context.text)),
    "bm25_field": IoOp(
        lambda req, name: next(f for f in req.collection.inverted.fields if f.name == name), _check_field
    ),
    "query_vector": IoOp(_query_vector, _check_space),
    "item_vectors": IoOp(_item_vectors, _check_space),
    "branch_ranks": IoOp(_provenance("ranks")),
    "branch_scores": IoOp(_provenance("branch_scores")),
    "fused_score": IoOp(lambda req, _: np.array([c.fused_score for c in req.candidates], dtype=np.float64)),
    "column": IoOp(_column, _check_column),
    "popularity": IoOp(_popularity, _check_popularity),
    "keyword_codes": IoOp(
        lambda req, name: np.asarray(req.collection.keywords.fields[name].codes[req.rows], dtype=np.int64),
        _check_keyword_codes,
    ),
    "item_lengths": IoOp(lambda req, _: req.view.item_lengths(req.rows, req.records)),
    "field_terms": IoOp(
        lambda req, name: req.view.field_terms(req.rows, name or "", req.records),
        lambda view, name: (
            None if view.has_field(name or "") else f"stored items have no text field {name!r}"
        ),
    ),
    "user_history": IoOp(_user_history, _check_behaviour),
    "keyword_matrix": IoOp(
        lambda req, name: req.view.keyword_matrix(name or ""),
        lambda view, name: (
            None
            if name in view.collection.keywords.fields
            else f"no keyword field {name!r}; the collection has {sorted(view.collection.keywords.fields)}"
        ),
    ),
    "user_time": IoOp(_user_time, _check_behaviour),
    "item_event_times": IoOp(lambda req, _: req.view.item_event_times(), _check_behaviour),
    "item2vec": IoOp(
        lambda req, _: _item2vec(req.view),
        lambda view, _: None if _item2vec(view) is not None else "the collection has no item2vec vectors",
    ),
}


# ---------------------------------------------------------------------------------------------- calc ops
Params = dict[str, Any]


@dataclass(frozen=True)
class Need:
    """An IO input of a calc op."""

    op: str
    arg: str | None = None


@dataclass(frozen=True)
class CalcOp:
    compute: Callable[[Request, Params], np.ndarray]
    needs: Callable[[Params], list[Need]]
    defaults: Params = field(default_factory=dict)  # every allowed parameter; REQUIRED marks a mandatory one
    doc: str = ""

    def branch(self, params: Params) -> str | None:
        """The recall branch this op reads provenance of, if any."""
        return params.get("branch") if "branch" in self.defaults else None


REQUIRED = object()


def _terms(req: Request) -> list[str]:
    return list(req.get("query_terms").get(req.view.primary_analyzer, []))


def _field_bm25(req: Request, params: Params) -> np.ndarray:
    """BM25 of one field (unboosted), the query analysed by that field's analyzer."""
    bm25_field = req.get("bm25_field", params["field"])
    tokens = req.get("query_terms").get(bm25_field.analyzer, [])
    return bm25_field.index.score_rows(tokens, req.rows).astype(np.float64)


def _overlap(req: Request, _: Params) -> np.ndarray:
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


def _field_overlap(req: Request, params: Params) -> np.ndarray:
    """Share of the distinct query terms (primary analyzer) found in a stored text field of the item."""
    terms = set(_terms(req))
    if not terms:
        return np.zeros(len(req))
    return np.array([len(terms & item) / len(terms) for item in req.get("field_terms", params["field"])])


def _prf_cosine(req: Request, params: Params) -> np.ndarray:
    """Cosine between the item and the centroid of the first `top` candidates in the merged order
    (pseudo-relevance feedback: agreement with what the branches jointly rank highest)."""
    vectors = req.get("item_vectors", params["space"])
    if not len(vectors):
        return np.zeros(0)
    centroid = _unit(vectors[: int(params["top"])].mean(axis=0))
    return (vectors @ centroid).astype(np.float64)


def _category_preference(req: Request, params: Params) -> np.ndarray:
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


def _tag_preference(req: Request, params: Params) -> np.ndarray:
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


def _item2vec_affinity(req: Request, params: Params) -> np.ndarray:
    """Cosine between the candidate's item2vec vector and the mean of the user's history vectors (the
    newest `last` of them; 0: all)."""
    history, vectors = req.get("user_history"), req.get("item2vec")
    if params["last"] > 0:
        history = history[-int(params["last"]) :]
    if not history.size:
        return np.zeros(len(req))
    profile = _unit(np.asarray(vectors[history], dtype=np.float32).mean(axis=0))
    return np.asarray(vectors[req.rows], dtype=np.float32) @ profile


SECONDS_PER_DAY = 86_400.0


def _time_gap(req: Request, params: Params) -> np.ndarray:
    """Days between the user's newest event and the middle (median) of the item's events: how far the
    item's audience is from the user's moment. `missing` without a user history or item events."""
    now = req.get("user_time")
    indptr, times = req.get("item_event_times")
    starts, stops = indptr[req.rows], indptr[req.rows + 1]
    middle = times[np.minimum((starts + stops) // 2, len(times) - 1)] if len(times) else np.zeros(len(req))
    gap = np.abs(middle.astype(np.float64) - now) / SECONDS_PER_DAY
    return np.where((stops > starts) & ~np.isnan(gap), gap, float(params["missing"]))


def _events_near(req: Request, params: Params) -> np.ndarray:
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


def _geo_distance(req: Request, params: Params) -> np.ndarray:
    location = req.context.location
    if location is None:
        return np.full(len(req), float(params["missing"]))
    distance = haversine_km(location[0], location[1], req.get("column", "lat"), req.get("column", "lon"))
    return np.where(np.isnan(distance), float(params["missing"]), distance)


def _item_length(req: Request, params: Params) -> np.ndarray:
    """Item terms (primary analyzer); `relative`: divided by the primary field's mean document length."""
    lengths = req.get("item_lengths")
    if not params["relative"]:
        return lengths
    return lengths / max(float(req.collection.inverted.fields[0].index.params["avg_doc_len"]), 1e-9)


def _filled(values: np.ndarray, missing: float) -> np.ndarray:
    return np.where(np.isnan(values), float(missing), values)


CALC_OPS: dict[str, CalcOp] = {
    "bm25": CalcOp(
        lambda req, p: req.collection.inverted.score_rows(req.get("query_terms"), req.rows).astype(
            np.float64
        ),
        lambda p: [Need("query_terms")],
        doc="Boosted multi-field BM25 of the query for the candidate.",
    ),
    "field_bm25": CalcOp(
        _field_bm25,
        lambda p: [Need("query_terms"), Need("bm25_field", p["field"])],
        {"field": REQUIRED},
        str(_field_bm25.__doc__),
    ),
    "cosine": CalcOp(
        lambda req, p: (req.get("item_vectors", p["space"]) @ req.get("query_vector", p["space"])).astype(
            np.float64
        ),
        lambda p: [Need("query_vector", p["space"]), Need("item_vectors", p["space"])],
        {"space": "dense"},
        "Cosine between the query and item vectors of a space (dense transformer or word2vec).",
    ),
    "term_overlap": CalcOp(_overlap, lambda p: [Need("query_terms")], doc=str(_overlap.__doc__)),
    "field_overlap": CalcOp(
        _field_overlap,
        lambda p: [Need("query_terms"), Need("field_terms", p["field"])],
        {"field": REQUIRED},
        str(_field_overlap.__doc__),
    ),
    "prf_cosine": CalcOp(
        _prf_cosine,
        lambda p: [Need("item_vectors", p["space"])],
        {"space": "dense", "top": 5},
        str(_prf_cosine.__doc__),
    ),
    "query_length": CalcOp(
        lambda req, p: np.full(len(req), float(len(_terms(req)))),
        lambda p: [Need("query_terms")],
        doc="Query terms (primary analyzer), the same for every candidate.",
    ),
    "item_length": CalcOp(
        _item_length,
        lambda p: [Need("item_lengths")],
        {"relative": False},
        str(_item_length.__doc__),
    ),
    "branch_rank": CalcOp(
        lambda req, p: _filled(req.get("branch_ranks", p["branch"]), p["missing"]),
        lambda p: [Need("branch_ranks", p["branch"])],
        {"branch": REQUIRED, "missing": 101.0},
        "1-based rank in a branch; `missing` (branch depth + 1) where the branch did not find it.",
    ),
    "branch_found": CalcOp(
        lambda req, p: (~np.isnan(req.get("branch_ranks", p["branch"]))).astype(np.float64),
        lambda p: [Need("branch_ranks", p["branch"])],
        {"branch": REQUIRED},
        "1 where the branch found the candidate, else 0.",
    ),
    "branch_score": CalcOp(
        lambda req, p: _filled(req.get("branch_scores", p["branch"]), p["missing"]),
        lambda p: [Need("branch_scores", p["branch"])],
        {"branch": REQUIRED, "missing": 0.0},
        "The branch's own score; `missing` where it did not find the candidate.",
    ),
    "branch_count": CalcOp(
        lambda req, p: np.array([len(c.ranks) for c in req.candidates], dtype=np.float64),
        lambda p: [],
        doc="Number of branches that found the candidate.",
    ),
    "fused": CalcOp(
        lambda req, p: req.get("fused_score"), lambda p: [Need("fused_score")], doc="Fused score."
    ),
    "column": CalcOp(
        lambda req, p: _filled(req.get("column", p["name"]), p["missing"]),
        lambda p: [Need("column", p["name"])],
        {"name": REQUIRED, "missing": 0.0},
        "A numeric column of the item.",
    ),
    "popularity": CalcOp(
        lambda req, p: _filled(req.get("popularity"), p["missing"]),
        lambda p: [Need("popularity")],
        {"missing": 0.0},
        "Item popularity (behaviour-decayed when the collection has events).",
    ),
    "geo_distance": CalcOp(
        _geo_distance,
        lambda p: [Need("column", "lat"), Need("column", "lon")],
        {"missing": FARTHEST_KM},
        "Great-circle km from the request's location to the item; `missing` without either.",
    ),
    "category_preference": CalcOp(
        _category_preference,
        lambda p: [Need("user_history"), Need("keyword_codes", p["field"])],
        {"field": "category"},
        str(_category_preference.__doc__),
    ),
    "item2vec_affinity": CalcOp(
        _item2vec_affinity,
        lambda p: [Need("user_history"), Need("item2vec")],
        {"last": 0},
        str(_item2vec_affinity.__doc__),
    ),
    "tag_preference": CalcOp(
        _tag_preference,
        lambda p: [Need("user_history"), Need("keyword_matrix", p["field"])],
        {"field": "tags"},
        str(_tag_preference.__doc__),
    ),
    "time_gap": CalcOp(
        _time_gap,
        lambda p: [Need("user_time"), Need("item_event_times")],
        {"missing": 36_500.0},
        str(_time_gap.__doc__),
    ),
    "events_near": CalcOp(
        _events_near,
        lambda p: [Need("user_time"), Need("item_event_times")],
        {"days": 30.0},
        str(_events_near.__doc__),
    ),
    "history_length": CalcOp(
        lambda req, p: np.full(len(req), float(len(req.get("user_history")))),
        lambda p: [Need("user_history")],
        doc="Items in the user's history (or the request's items), the same for every candidate.",
    ),
}
