"""The encoder of a collection whose items carried their own vectors (kind ``supplied``): there is none.

Such a build indexed the user's vectors (`indexer.item_vectors`) and ran no model, and no model here embeds a
text query into the user's space. `SuppliedVectors` stands where a collection keeps its query encoder, so the
collection still loads, reports its kind and serves what reads only the stored vectors (`/similar`, the
ranker's item-vector features); the dense branch's gate stays closed for text queries, and the ranker's
query-vector features report themselves unavailable. Asked to embed anything, it raises `ValueError`.
"""

from __future__ import annotations

import numpy as np

from indexer.schemas import SUPPLIED

NO_QUERY_ENCODER = (
    "this collection's vectors were supplied with its items; no encoder embeds text into their space"
)


class SuppliedVectors:
    """A `TextEncoder` that embeds nothing; `dim` is 0: it produces no vectors."""

    name = "supplied vectors"
    kind = SUPPLIED
    multilingual = False
    dim = 0
    device = "cpu"

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        raise ValueError(NO_QUERY_ENCODER)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        raise ValueError(NO_QUERY_ENCODER)
