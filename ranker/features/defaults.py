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


# Next-item recommendation (`/recommend`): where the behaviour branches placed the item and how sure they
# were (within the request), how popular it is (overall and around the user's newest event), how far its
# audience's time is from the user's, and how it matches the user's history (tags, item2vec, overall and
# over the newest items). Everything a collection may lack is optional.
BEHAVIOUR_BRANCHES = ("covisit", "item2item", "user_pref", "popular")
DEFAULT_RECOMMEND: list[dict[str, Any]] = [
    *(
        feature
        for branch in BEHAVIOUR_BRANCHES
        for feature in (
            {
                "name": f"rank_{branch}",
                "calc": "branch_rank",
                "params": {"branch": branch},
                "transforms": ["log1p"],
                "optional": True,
            },
            {
                "name": f"{branch}_z",
                "calc": "branch_score",
                "params": {"branch": branch},
                "transforms": ["zscore"],
                "optional": True,
            },
        )
    ),
    {"name": "branches", "calc": "branch_count"},
    {"name": "fused_ratio", "calc": "fused", "transforms": ["max_ratio"]},
    {"name": "popularity", "calc": "popularity", "transforms": ["log1p"], "optional": True},
    {"name": "popularity_z", "calc": "popularity", "transforms": ["log1p", "zscore"], "optional": True},
    {"name": "history_len", "calc": "history_length", "transforms": ["log1p"], "optional": True},
    {"name": "tag_pref", "calc": "tag_preference", "params": {"field": "tags"}, "optional": True},
    {"name": "category_pref", "calc": "category_preference", "optional": True},
    {"name": "item2vec_all", "calc": "item2vec_affinity", "optional": True},
    {"name": "item2vec_last5", "calc": "item2vec_affinity", "params": {"last": 5}, "optional": True},
    {"name": "time_gap", "calc": "time_gap", "transforms": ["log1p"], "optional": True},
    {"name": "events_near_30d", "calc": "events_near", "transforms": ["log1p"], "optional": True},
    {
        "name": "events_near_30d_z",
        "calc": "events_near",
        "transforms": ["log1p", "zscore"],
        "optional": True,
    },
]


def default_search_declaration() -> FeatureDeclaration:
    return FeatureDeclaration.model_validate({"features": DEFAULT_SEARCH})


def default_recommend_declaration() -> FeatureDeclaration:
    return FeatureDeclaration.model_validate({"features": DEFAULT_RECOMMEND})
