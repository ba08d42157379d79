"""Ranking features declared once and computed by the same code for training and serving (Augur style).

Design choice: operators live in explicit Python registries, features are *declared as data*. A feature is
a calc op (`calc_ops.CALC_OPS`) over IO ops (`io_ops.IO_OPS`, fetched once per request and shared), followed
by a chain of transformers (`transforms.TRANSFORMS`). Declarations are JSON/TOML parsed into pydantic models
(`declarations.FeatureDeclaration`), so the exact declaration a model was trained with travels in the
ranker artifact's manifest and is rebuilt at serving, and a new feature from existing operators needs no
code. Before any request, a declaration is checked against the collection (and the pipeline's branches):
anything it cannot compute is refused at load with the reasons (`UnsatisfiableDeclaration`).

Modules:

- `collection`: the structural protocol of what features read from a loaded collection.
- `io_ops`, `calc_ops`, `transforms`: the operators (IO: fetch raw values; calc: compute features).
- `declarations`: the typed declaration, satisfiability checks.
- `defaults`: the default search declaration.
- `extract`: `FeatureExtractor`, one float64 matrix per request, vectorised over the candidates.
- `log`: `FeatureLogger` (JSON lines per request) and `read_feature_log`.
"""

from __future__ import annotations

from ranker.features.collection import CollectionView, FeatureCollection
from ranker.features.declarations import FeatureDeclaration, FeatureSpec, UnsatisfiableDeclaration
from ranker.features.defaults import default_recommend_declaration, default_search_declaration
from ranker.features.extract import FeatureExtractor
from ranker.features.log import FeatureLogger, LoggedRequest, read_feature_log

__all__ = [
    "CollectionView",
    "FeatureCollection",
    "FeatureDeclaration",
    "FeatureExtractor",
    "FeatureLogger",
    "FeatureSpec",
    "LoggedRequest",
    "UnsatisfiableDeclaration",
    "default_recommend_declaration",
    "default_search_declaration",
    "read_feature_log",
]
