"""The default search declaration: features that mean the same thing on any text collection.

Raw score magnitudes differ wildly between collections (BM25 of a 300-term English abstract against a
20-term Chinese sentence), so score features are normalised within the request (`max_ratio`, `zscore`,
`gap_to_max`, ranks) and lengths are compared to the request's other candidates. Optional features are
kept only when the training collection can compute them (Word2Vec needs a build that trained it).
"""

from __future__ import annotations

from typing import Any

from ranker.features.declarations import FeatureDeclaration

DEFAULT_SEARCH: list[dict[str, Any]] = [
    {"name": "bm25_ratio", "calc": "bm25", "transforms": ["max_ratio"]},
    {"name": "bm25_z", "calc": "bm25", "transforms": ["zscore"]},
    {"name": "bm25_rank", "calc": "bm25", "transforms": ["rank", "log1p"]},
    {"name": "dense_cos", "calc": "cosine", "params": {"space": "dense"}},
    {"name": "dense_gap", "calc": "cosine", "params": {"space": "dense"}, "transforms": ["gap_to_max"]},
    {"name": "dense_z", "calc": "cosine", "params": {"space": "dense"}, "transforms": ["zscore"]},
    {"name": "dense_max", "calc": "cosine", "params": {"space": "dense"}, "transforms": ["request_max"]},
    {
        "name": "w2v_z",
        "calc": "cosine",
        "params": {"space": "word2vec"},
        "transforms": ["zscore"],
        "optional": True,
    },
    {"name": "overlap", "calc": "term_overlap"},
    {"name": "query_len", "calc": "query_length", "transforms": ["log1p"]},
    {"name": "item_len_z", "calc": "item_length", "transforms": ["log1p", "zscore"]},
    {"name": "rank_bm25", "calc": "branch_rank", "params": {"branch": "bm25"}, "transforms": ["log1p"]},
    {"name": "rank_dense", "calc": "branch_rank", "params": {"branch": "dense"}, "transforms": ["log1p"]},
    {"name": "branches", "calc": "branch_count"},
    {"name": "fused_ratio", "calc": "fused", "transforms": ["max_ratio"]},
]


def default_search_declaration() -> FeatureDeclaration:
    return FeatureDeclaration.model_validate({"features": DEFAULT_SEARCH})
