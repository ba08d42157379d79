"""Every recall branch the service can run, one module per branch or family.

Text: BM25 (`bm25`), the transformer embedding (`dense`), Word2Vec (`word2vec`). Behaviour (`behaviour`):
item-to-item by item2vec, co-visitation item-CF, the user's preferred keywords. Context (`context`):
geography and popularity. Each is a named `CandidateSource` whose `enabled` gate says whether it runs for a
request; a collection without the data a branch needs simply never opens its gate.
"""

from __future__ import annotations

from retrieval.branches.behaviour import CovisitSource, ItemToItemSource, UserPreferenceSource
from retrieval.branches.bm25 import Bm25Source
from retrieval.branches.context import GeoSource, PopularSource
from retrieval.branches.dense import DenseSource
from retrieval.branches.word2vec import Word2VecSource
from retrieval.candidates import CandidateSource
from retrieval.collection import Collection


def all_sources(collection: Collection) -> list[CandidateSource]:
    """Every branch, in the order their results are reported."""
    return [
        Bm25Source(collection),
        DenseSource(collection),
        Word2VecSource(collection),
        ItemToItemSource(collection),
        CovisitSource(collection),
        UserPreferenceSource(collection),
        GeoSource(collection),
        PopularSource(collection),
    ]
