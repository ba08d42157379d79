"""IO operators: fetch the raw values a request and the collection hold, memoised per request.

Each IO op (`IO_OPS`) reads one kind of value: the analysed query, query and item vectors, the candidates'
provenance (per-branch rank and score, fused score), numeric columns, keyword codes, item lengths, the
user's history. A `Request` memoises every value it fetched, so two features reading the query vector encode
the query once. Each op also says whether a collection can serve it (`check`: None, or why not), so a
declaration is checked against a collection before any request. Calc ops (`ranker.features.calc_ops`)
compute features from these values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from indexer.histories import recent_items
from indexer.schemas import SUPPLIED
from ranker.features.collection import CollectionView, vectors_available
from ranker.scoring import Candidate, RankingContext, branches_found

SPACES = ("dense", "word2vec")


class Request:
    """One request's candidates and memoised IO values."""

    def __init__(
        self, view: CollectionView, context: RankingContext, candidates: Sequence[Candidate]
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

    def records(self, rows: Sequence[int]) -> list[dict | None]:
        """Docstore records of candidate rows, each read at most once per request: on first sight of an
        item, its length and its title's terms both need its record."""
        missing = [row for row in dict.fromkeys(rows) if row not in self._records]
        if missing:
            self._records.update(zip(missing, self.view.records(missing), strict=True))
        return [self._records[row] for row in rows]

    @cached_property
    def branches_present(self) -> set[str]:
        """The branches that found at least one of the candidates."""
        return branches_found(self.candidates)

    def get(self, op: str, arg: str | None = None) -> Any:
        key = (op, arg)
        if key not in self._memo:
            self._memo[key] = IO_OPS[op].fetch(self, arg)
        return self._memo[key]


def always(view: CollectionView, arg: str | None) -> str | None:
    """Every collection can serve it."""
    return None


@dataclass(frozen=True)
class IoOp:
    """How to fetch a value for a request (`fetch(request, arg)`), and whether a collection has it."""

    fetch: Callable[[Request, str | None], Any]
    check: Callable[[CollectionView, str | None], str | None] = always


def unit(vector: np.ndarray) -> np.ndarray:
    """`vector` scaled to length 1 (float32); a zero vector stays zero."""
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


# ------------------------------------------------------------------------------------------------ query
def query_terms(req: Request, _: str | None) -> Any:
    """The terms the BM25 branch searched with, per analyzer (a long query pruned the same way)."""
    return req.collection.inverted.query_terms(req.context.text)


def bm25_field(req: Request, name: str | None) -> Any:
    """The BM25 field `name` (its analyzer and inverted index)."""
    return next(f for f in req.collection.inverted.fields if f.name == name)


def check_field(view: CollectionView, name: str | None) -> str | None:
    names = [f.name for f in view.collection.inverted.fields]
    return None if name in names else f"no BM25 field {name!r}; the collection has {names}"


def _vector_index(view: CollectionView, space: str | None) -> Any:
    if space == "dense":
        return view.collection.vectors
    text_vectors = view.collection.text_vectors
    return text_vectors.index if text_vectors is not None else None


def check_space(view: CollectionView, space: str | None) -> str | None:
    """Why the items' stored vectors in `space` cannot be read (None when they can)."""
    if space not in SPACES:
        return f"unknown vector space {space!r}; choose one of {list(SPACES)}"
    if space == "word2vec" and view.collection.text_vectors is None:
        return "the collection has no Word2Vec vectors"
    problem = vectors_available(_vector_index(view, space))
    return f"{space} vectors: {problem}" if problem else None


def check_query_space(view: CollectionView, space: str | None) -> str | None:
    """Why a query cannot be embedded into `space` (None when it can): the item vectors' reasons, and for
    the dense space no query encoder, or the items' own vectors (`indexer.item_vectors`)."""
    problem = check_space(view, space)
    if problem is not None or space != "dense":
        return problem
    encoder = getattr(view.collection, "encoder", None)
    if encoder is None:
        return "the collection has no query encoder"
    if getattr(encoder, "kind", None) == SUPPLIED:
        return "the dense vectors were supplied with the items; no encoder embeds a query into their space"
    return None


def query_vector(req: Request, space: str | None) -> np.ndarray:
    """The query's unit vector in `space`: the one the recall branch computed, else embedded here (the
    dense space embeds the query form, as E5 needs)."""
    known = (req.context.query_vectors or {}).get(space or "")
    if known is not None:
        return unit(np.asarray(known, dtype=np.float32).reshape(-1))
    if space == "dense":
        vector = req.collection.encoder.encode_queries([req.context.text])[0]
        return unit(np.asarray(vector, dtype=np.float32))
    return unit(np.asarray(req.collection.text_vectors.embed(req.context.text), dtype=np.float32))


def item_vectors(req: Request, space: str | None) -> np.ndarray:
    """The candidates' unit vectors in `space`."""
    return req.view.unit_vectors(space or "", _vector_index(req.view, space), req.rows)


# ------------------------------------------------------------------------------------------- provenance
def branch_ranks(req: Request, branch: str | None) -> np.ndarray:
    """Each candidate's 1-based rank in `branch`; NaN where the branch did not find it."""
    return np.array([c.ranks.get(branch or "", np.nan) for c in req.candidates], dtype=np.float64)


def branch_scores(req: Request, branch: str | None) -> np.ndarray:
    """Each candidate's score in `branch`; NaN where the branch did not find it."""
    return np.array([c.branch_scores.get(branch or "", np.nan) for c in req.candidates], dtype=np.float64)


def fused_score(req: Request, _: str | None) -> np.ndarray:
    """Each candidate's score in the merged (fused) order."""
    return np.array([c.fused_score for c in req.candidates], dtype=np.float64)


# --------------------------------------------------------------------------------------- item attributes
def column(req: Request, name: str | None) -> np.ndarray:
    """The candidates' values of numeric column `name` (NaN = missing)."""
    return np.asarray(req.collection.columns[name or ""][req.rows], dtype=np.float64)


def check_column(view: CollectionView, name: str | None) -> str | None:
    if (name or "") not in view.collection.columns:
        return f"no numeric column {name!r}; the collection has {sorted(view.collection.columns)}"
    return None


def popularity(req: Request, _: str | None) -> np.ndarray:
    """The candidates' popularity (behaviour-decayed when the collection has events)."""
    values = req.collection.popularity
    if values is None:  # `check_popularity` refuses such a declaration before any request
        raise ValueError("the collection has no popularity")
    return np.asarray(values[req.rows], dtype=np.float64)


def check_popularity(view: CollectionView, _: str | None) -> str | None:
    return None if view.collection.popularity is not None else "the collection has no popularity"


def keyword_codes(req: Request, name: str | None) -> np.ndarray:
    """The candidates' value codes in single-valued keyword field `name` (-1 = none)."""
    return np.asarray(req.collection.keywords.fields[name].codes[req.rows], dtype=np.int64)


def check_keyword_codes(view: CollectionView, name: str | None) -> str | None:
    fields = view.collection.keywords.fields
    if name not in fields:
        return f"no keyword field {name!r}; the collection has {sorted(fields)}"
    if fields[name].codes is None:
        return f"keyword field {name!r} holds several values per item"
    return None


def keyword_matrix(req: Request, name: str | None) -> Any:
    """Rows x values matrix of keyword field `name` (multi-valued fields too), over the whole collection."""
    return req.view.keyword_matrix(name or "")


def check_keyword_field(view: CollectionView, name: str | None) -> str | None:
    fields = view.collection.keywords.fields
    return None if name in fields else f"no keyword field {name!r}; the collection has {sorted(fields)}"


def item_lengths(req: Request, _: str | None) -> np.ndarray:
    """The candidates' lengths in terms (primary analyzer)."""
    return req.view.item_lengths(req.rows, req.records)


def field_terms(req: Request, name: str | None) -> Any:
    """The distinct terms (primary analyzer) of each candidate's stored text field `name`."""
    return req.view.field_terms(req.rows, name or "", req.records)


def check_text_field(view: CollectionView, name: str | None) -> str | None:
    return None if view.has_field(name or "") else f"stored items have no text field {name!r}"


# --------------------------------------------------------------------------------------------- behaviour
def user_history(req: Request, _: str | None) -> np.ndarray:
    """The request's recent items, oldest first, as the behaviour branches read them
    (`indexer.histories.recent_items`)."""
    return recent_items(req.collection.behaviour, req.context.user_id, req.context.items)


def user_time(req: Request, _: str | None) -> float:
    """Time (epoch seconds) of the user's newest event: "now" for that user; NaN without a history."""
    behaviour, user = req.collection.behaviour, req.context.user_id
    if behaviour is None or user is None:
        return float("nan")
    times = behaviour.history(user)[1]
    return float(np.max(times)) if len(times) else float("nan")


def check_behaviour(view: CollectionView, _: str | None) -> str | None:
    return None if view.collection.behaviour else "the collection has no behaviour"


def item_event_times(req: Request, _: str | None) -> Any:
    """(indptr, times): each item's event times, sorted, over the whole behaviour log."""
    return req.view.item_event_times()


def _item2vec_of(view: CollectionView) -> np.ndarray | None:
    behaviour = view.collection.behaviour
    return None if behaviour is None else behaviour.item_vectors


def item2vec(req: Request, _: str | None) -> np.ndarray | None:
    """Every item's item2vec vector (zero for items no user sequence held)."""
    return _item2vec_of(req.view)


def check_item2vec(view: CollectionView, _: str | None) -> str | None:
    return None if _item2vec_of(view) is not None else "the collection has no item2vec vectors"


IO_OPS: dict[str, IoOp] = {
    "query_terms": IoOp(query_terms),
    "bm25_field": IoOp(bm25_field, check_field),
    "query_vector": IoOp(query_vector, check_query_space),
    "item_vectors": IoOp(item_vectors, check_space),
    "branch_ranks": IoOp(branch_ranks),
    "branch_scores": IoOp(branch_scores),
    "fused_score": IoOp(fused_score),
    "column": IoOp(column, check_column),
    "popularity": IoOp(popularity, check_popularity),
    "keyword_codes": IoOp(keyword_codes, check_keyword_codes),
    "item_lengths": IoOp(item_lengths),
    "field_terms": IoOp(field_terms, check_text_field),
    "user_history": IoOp(user_history, check_behaviour),
    "keyword_matrix": IoOp(keyword_matrix, check_keyword_field),
    "user_time": IoOp(user_time, check_behaviour),
    "item_event_times": IoOp(item_event_times, check_behaviour),
    "item2vec": IoOp(item2vec, check_item2vec),
}
