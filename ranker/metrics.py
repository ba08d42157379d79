"""Ranking-quality metrics that agree with trec_eval, per query and over a whole run.

Every per-query function takes a ranked list of document ids (best first) and the query's judgments
`{docid: relevance}`. A relevance above 0 means relevant (trec_eval's default relevance level of 1); an
unjudged document counts as not relevant. The formulas are those of trec_eval:

- `recall_at_k`: relevant documents in the top k / all relevant documents in the judgments (`recall_k`).
- `precision_at_k`: relevant documents in the top k / k, even when fewer than k were retrieved (`P_k`).
- `average_precision`: sum of the precision at the rank of each relevant retrieved document / all relevant
  documents (`map`; with `k`, only the top k count, like `map_cut_k`).
- `ndcg_at_k`: gain = relevance grade, discount log2(rank + 1), ideal ranking built from every judged document
  (`ndcg_cut_k`; without `k`, `ndcg`).
- `reciprocal_rank`: 1 / rank of the first relevant document in the top k (`recip_rank` on the list cut at k).
- `interpolated_precision`: precision at recall level r = the highest precision at any rank whose recall
  is >= r, 0 when r is never reached (`iprec_at_recall_r`).
- `ap_11pt` (PASCAL VOC 2007) averages that interpolated precision over recall 0, 0.1, ..., 1; `ap_allpt`
  (VOC 2010 onwards) is the area under the interpolated precision-recall curve.

`evaluate_run` applies named metrics ("ndcg@10", "map", ...) to a whole run; see its docstring for how missing
queries, ties and unjudged queries are handled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Qrels = Mapping[str, int]
Run = Mapping[str, Sequence[str] | Mapping[str, float]]
"""Query id -> ranked doc ids (best first) or `{docid: score}`; see `evaluate_run`."""

ELEVEN_RECALL_LEVELS: tuple[float, ...] = tuple(i / 10 for i in range(11))


@dataclass(frozen=True, slots=True)
class Judged:
    """What a query's judgments contribute to every metric: the relevant count and the ideal gains."""

    num_relevant: int
    ideal_gains: np.ndarray  # positive grades, highest first

    @classmethod
    def from_qrels(cls, qrels: Qrels) -> Judged:
        grades = np.fromiter((int(rel) for rel in qrels.values()), dtype=np.int64, count=len(qrels))
        positive = np.sort(grades[grades > 0])[::-1]
        return cls(num_relevant=int(positive.size), ideal_gains=positive.astype(np.float64))


def relevance_grades(ranked: Sequence[str], qrels: Qrels) -> np.ndarray:
    """The relevance grade of each ranked document (0 when unjudged); duplicates are refused."""
    if len(set(ranked)) != len(ranked):
        repeated = sorted(doc for doc, count in Counter(ranked).items() if count > 1)
        raise ValueError(f"ranked list holds the same document more than once: {repeated[:5]}")
    return np.fromiter((int(qrels.get(doc, 0)) for doc in ranked), dtype=np.int64, count=len(ranked))


def _cut(grades: np.ndarray, k: int | None) -> np.ndarray:
    if k is None:
        return grades
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"cutoff k must be a positive integer or None, got {k!r}")
    return grades[:k]


# Array-level metrics: `grades` holds the relevance of the ranked documents, best first.


def _recall(grades: np.ndarray, judged: Judged, k: int | None) -> float:
    if judged.num_relevant == 0:
        return 0.0
    return float(np.count_nonzero(_cut(grades, k) > 0) / judged.num_relevant)


def _precision(grades: np.ndarray, judged: Judged, k: int | None) -> float:
    top = _cut(grades, k)
    denominator = k if k is not None else top.size
    return float(np.count_nonzero(top > 0) / denominator) if denominator else 0.0


def _precision_recall(grades: np.ndarray, judged: Judged) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relevant flags, precision and recall at every rank of `grades`."""
    relevant = grades > 0
    hits = np.cumsum(relevant)
    precision = hits / np.arange(1, grades.size + 1)
    recall = hits / judged.num_relevant
    return relevant, precision, recall


def _average_precision(grades: np.ndarray, judged: Judged, k: int | None) -> float:
    if judged.num_relevant == 0:
        return 0.0
    relevant, precision, _ = _precision_recall(_cut(grades, k), judged)
    return float(precision[relevant].sum() / judged.num_relevant)


def _interpolated(grades: np.ndarray, judged: Judged, k: int | None, levels: Sequence[float]) -> np.ndarray:
    if judged.num_relevant == 0 or grades.size == 0:
        return np.zeros(len(levels))
    _, precision, recall = _precision_recall(_cut(grades, k), judged)
    best_from_here = np.maximum.accumulate(precision[::-1])[::-1]
    first_rank = np.searchsorted(recall, np.asarray(levels, dtype=np.float64), side="left")
    reached = first_rank < recall.size
    out = np.zeros(len(levels))
    out[reached] = best_from_here[first_rank[reached]]
    return out


def _ap_11pt(grades: np.ndarray, judged: Judged, k: int | None) -> float:
    return float(_interpolated(grades, judged, k, ELEVEN_RECALL_LEVELS).mean())


def _ap_allpt(grades: np.ndarray, judged: Judged, k: int | None) -> float:
    if judged.num_relevant == 0:
        return 0.0
    relevant, precision, _ = _precision_recall(_cut(grades, k), judged)
    if precision.size == 0:
        return 0.0
    best_from_here = np.maximum.accumulate(precision[::-1])[::-1]
    # Recall grows by 1/num_relevant at each relevant rank; the curve's height there is the interpolated
    # precision.
    return float(best_from_here[relevant].sum() / judged.num_relevant)


def _ndcg(grades: np.ndarray, judged: Judged, k: int | None) -> float:
    ideal = judged.ideal_gains if k is None else judged.ideal_gains[:k]
    if ideal.size == 0:
        return 0.0
    gains = np.maximum(_cut(grades, k), 0).astype(np.float64)
    dcg = float((gains / np.log2(np.arange(2, gains.size + 2))).sum())
    idcg = float((ideal / np.log2(np.arange(2, ideal.size + 2))).sum())
    return dcg / idcg


def _reciprocal_rank(grades: np.ndarray, judged: Judged, k: int | None) -> float:
    hits = np.flatnonzero(_cut(grades, k) > 0)
    return float(1.0 / (hits[0] + 1)) if hits.size else 0.0


# Per-query public functions.


def recall_at_k(ranked: Sequence[str], qrels: Qrels, k: int | None = None) -> float:
    """Share of the relevant documents found in the top k (trec_eval `recall_k`)."""
    return _recall(relevance_grades(ranked, qrels), Judged.from_qrels(qrels), k)


def precision_at_k(ranked: Sequence[str], qrels: Qrels, k: int | None = None) -> float:
    """Relevant documents in the top k divided by k (trec_eval `P_k`); without k, by the list's length."""
    return _precision(relevance_grades(ranked, qrels), Judged.from_qrels(qrels), k)


def average_precision(ranked: Sequence[str], qrels: Qrels, k: int | None = None) -> float:
    """Non-interpolated average precision (trec_eval `map`; with k, `map_cut_k`)."""
    return _average_precision(relevance_grades(ranked, qrels), Judged.from_qrels(qrels), k)


def interpolated_precision(
    ranked: Sequence[str],
    qrels: Qrels,
    recall_levels: Sequence[float] = ELEVEN_RECALL_LEVELS,
    k: int | None = None,
) -> np.ndarray:
    """Interpolated precision at each recall level (trec_eval `iprec_at_recall_*`), for PR curves."""
    return _interpolated(relevance_grades(ranked, qrels), Judged.from_qrels(qrels), k, recall_levels)


def ap_11pt(ranked: Sequence[str], qrels: Qrels, k: int | None = None) -> float:
    """PASCAL VOC 2007 average precision: mean interpolated precision at recall 0, 0.1, ..., 1."""
    return _ap_11pt(relevance_grades(ranked, qrels), Judged.from_qrels(qrels), k)


def ap_allpt(ranked: Sequence[str], qrels: Qrels, k: int | None = None) -> float:
    """VOC 2010+ average precision: area under the interpolated precision-recall curve."""
    return _ap_allpt(relevance_grades(ranked, qrels), Judged.from_qrels(qrels), k)


def ndcg_at_k(ranked: Sequence[str], qrels: Qrels, k: int | None = None) -> float:
    """Normalised DCG as trec_eval `ndcg_cut_k` (gain = grade, log2 discount, ideal from all judgments)."""
    return _ndcg(relevance_grades(ranked, qrels), Judged.from_qrels(qrels), k)


def reciprocal_rank(ranked: Sequence[str], qrels: Qrels, k: int | None = None) -> float:
    """1 / rank of the first relevant document within the top k, 0 when there is none."""
    return _reciprocal_rank(relevance_grades(ranked, qrels), Judged.from_qrels(qrels), k)


# Whole runs.

ArrayMetric = Callable[[np.ndarray, Judged, int | None], float]

METRICS: dict[str, ArrayMetric] = {
    "ndcg": _ndcg,
    "recall": _recall,
    "p": _precision,
    "map": _average_precision,
    "mrr": _reciprocal_rank,
    "ap_11pt": _ap_11pt,
    "ap_allpt": _ap_allpt,
}
"""Metric families for `evaluate_run`; a name is a family, optionally followed by `@k` (e.g. "ndcg@10")."""


def parse_metric(name: str) -> tuple[str, int | None]:
    """Split "ndcg@10" into ("ndcg", 10); unknown families and bad cutoffs raise ValueError."""
    family, sep, cutoff = name.partition("@")
    if family not in METRICS:
        raise ValueError(
            f"unknown metric {name!r}: the family must be one of {sorted(METRICS)}, e.g. 'ndcg@10'"
        )
    if not sep:
        return family, None
    if not cutoff.isdigit() or int(cutoff) < 1:
        raise ValueError(
            f"bad cutoff in metric {name!r}: expected a positive integer after '@', e.g. 'ndcg@10'"
        )
    return family, int(cutoff)


def rank_scored(scores: Mapping[str, float]) -> list[str]:
    """Order scored documents as trec_eval does: score descending, then docid descending."""
    for doc, score in scores.items():
        if not np.isfinite(score):
            raise ValueError(f"document {doc!r} has a non-finite score {score!r}")
    return [
        doc for doc, _ in sorted(scores.items(), key=lambda item: (float(item[1]), item[0]), reverse=True)
    ]


def ranked_lists(run: Run) -> dict[str, list[str]]:
    """A run as ranked lists: lists are kept in order, `{docid: score}` maps ordered like trec_eval."""
    out: dict[str, list[str]] = {}
    for qid, docs in run.items():
        out[qid] = rank_scored(docs) if isinstance(docs, Mapping) else list(docs)
    return out


def evaluate_run(
    run: Run, qrels: Mapping[str, Qrels], metrics: Iterable[str]
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Per-query and mean values of named metrics for a run, with trec_eval's conventions.

    `run` maps each query id either to a ranked list of doc ids (taken in order) or to `{docid: score}`
    (ordered by score descending, ties by docid descending, exactly as trec_eval). Metric names are a family
    from `METRICS` with an optional `@k`: "ndcg@10", "recall@100", "p@10", "map", "map@100", "mrr@10",
    "ap_11pt", "ap_allpt".

    The evaluated queries are those in `qrels` (including any whose judgments hold no relevant document,
    which score 0). A query in `qrels` that is absent from the run scores 0 on every metric, as with
    `trec_eval -c`; a query in the run without judgments is ignored, as trec_eval does. The mean is taken
    over all evaluated queries.
    """
    parsed = {name: parse_metric(name) for name in metrics}
    if not parsed:
        raise ValueError(f"no metrics requested; choose from {sorted(METRICS)} with an optional '@k'")
    per_query: dict[str, dict[str, float]] = {}
    for qid, judgments in qrels.items():
        docs = run.get(qid)
        if docs is None:
            ranked: Sequence[str] = []
        elif isinstance(docs, Mapping):
            ranked = rank_scored(docs)
        else:
            ranked = docs
        grades = relevance_grades(ranked, judgments)
        judged = Judged.from_qrels(judgments)
        per_query[qid] = {name: METRICS[family](grades, judged, k) for name, (family, k) in parsed.items()}
    mean = {
        name: float(np.mean([values[name] for values in per_query.values()])) if per_query else 0.0
        for name in parsed
    }
    return per_query, mean
