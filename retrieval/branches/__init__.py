"""Every recall branch the service can run, in one place.

Beyond the text pair (`bm25`, `dense` in `retrieval.sources`): Word2Vec, behaviour (item-to-item by
item2vec, co-visitation item-CF, the user's preferred keywords), geography and popularity. Each is a named
`CandidateSource` whose `enabled` gate says whether it runs for a request; a collection without the data a
branch needs simply never opens its gate.
"""

from __future__ import annotations

from retrieval.branches.behaviour import CovisitSource, ItemToItemSource, UserPreferenceSource
from retrieval.branches.context import GeoSource, PopularSource
from retrieval.branches.word2vec import Word2VecSource
from retrieval.candidates import CandidateSource
from retrieval.collection import Collection
from retrieval.sources import Bm25Source, DenseSource


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
