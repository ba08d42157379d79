"""The default search declaration: features that mean the same thing on any text collection.

Raw score magnitudes differ wildly between collections (BM25 of a 300-term English abstract against a
20-term Chinese sentence), so score features are normalised within the request (`max_ratio`, `zscore`,
`gap_to_max`, ranks), lengths are compared to the request's other candidates and to the collection's mean
document length, and no raw cosine is used (the transformer's cosines sit in another range on a language it
was not trained on).

The transformer's features are gated on the dense branch: when the pipeline did not run it for a request
(its language gate, a failure, a timeout) they are not computed and hold 0, a state training shows the
model by also running some queries with a branch left out. The title features are optional (kept when the
training collection's items have a title) and use `zscore`, not `gap_to_max`: on a collection whose titles
are empty every candidate then reads as neutral (0) instead of as "the best title match" (gap 0).

Measured on SciFact train (5-fold cross-validation over queries, LambdaMART, branch dropout 0.5; fusion
0.7166): these features reach nDCG@10 0.779; without the pseudo-relevance-feedback and title features 0.771;
adding Word2Vec cosines (`calc = "cosine"`, `space = "word2vec"`) 0.779, no gain, so they are left out.
"""

from __future__ import annotations

from typing import Any

from ranker.features.declarations import FeatureDeclaration

DEFAULT_SEARCH: list[dict[str, Any]] = [
    {"name": "bm25_ratio", "calc": "bm25", "transforms": ["max_ratio"]},
    {"name": "bm25_z", "calc": "bm25", "transforms": ["zscore"]},
    {"name": "bm25_rank", "calc": "bm25", "transforms": ["rank", "log1p"]},
    {"name": "dense_gap", "calc": "cosine", "transforms": ["gap_to_max"], "gate": "dense"},
    {"name": "dense_z", "calc": "cosine", "transforms": ["zscore"], "gate": "dense"},
    {"name": "prf5_z", "calc": "prf_cosine", "params": {"top": 5}, "transforms": ["zscore"], "gate": "dense"},
    {
        "name": "prf10_z",
        "calc": "prf_cosine",
        "params": {"top": 10},
        "transforms": ["zscore"],
        "gate": "dense",
    },
    {"name": "overlap", "calc": "term_overlap"},
    {"name": "overlap_z", "calc": "term_overlap", "transforms": ["zscore"]},
    {"name": "overlap_gap", "calc": "term_overlap", "transforms": ["gap_to_max"]},
    {"name": "query_len", "calc": "query_length", "transforms": ["log1p"]},
    {"name": "item_len_z", "calc": "item_length", "transforms": ["log1p", "zscore"]},
    {"name": "item_len_rel", "calc": "item_length", "params": {"relative": True}, "transforms": ["log1p"]},
    {"name": "rank_bm25", "calc": "branch_rank", "params": {"branch": "bm25"}, "transforms": ["log1p"]},
    {"name": "rank_dense", "calc": "branch_rank", "params": {"branch": "dense"}, "transforms": ["log1p"]},
    {"name": "branches", "calc": "branch_count"},
    {"name": "fused_ratio", "calc": "fused", "transforms": ["max_ratio"]},
    {"name": "title_overlap", "calc": "field_overlap", "params": {"field": "title"}, "optional": True},
    {
        "name": "title_overlap_z",
        "calc": "field_overlap",
        "params": {"field": "title"},
        "transforms": ["zscore"],
        "optional": True,
    },
]


def default_search_declaration() -> FeatureDeclaration:
    return FeatureDeclaration.model_validate({"features": DEFAULT_SEARCH})
