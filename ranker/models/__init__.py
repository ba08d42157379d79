"""Ranking models behind one protocol (`RankingModel`): LambdaMART (LightGBM) and a list-wise MLP (torch)."""

from __future__ import annotations

from ranker.models.base import SELECTION_METRIC, Groups, RankingModel, mean_ndcg, ndcg_of_scores
from ranker.models.lambdamart import LambdaMart
from ranker.models.listwise_mlp import ListwiseMlp

MODELS: dict[str, type[RankingModel]] = {LambdaMart.kind: LambdaMart, ListwiseMlp.kind: ListwiseMlp}


def model_class(kind: str) -> type[RankingModel]:
    if kind not in MODELS:
        raise ValueError(f"unknown ranking model {kind!r}; choose one of {sorted(MODELS)}")
    return MODELS[kind]


__all__ = [
    "MODELS",
    "SELECTION_METRIC",
    "Groups",
    "LambdaMart",
    "ListwiseMlp",
    "RankingModel",
    "mean_ndcg",
    "model_class",
    "ndcg_of_scores",
]
