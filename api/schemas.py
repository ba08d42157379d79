"""Request and response models of the REST API; their constraints are what a 422 explains."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

# Default of `create_app(max_query_chars=...)` / `serve --max-query-chars`: room for query by document (a
# pasted report or article); BM25 keeps a long query's most informative terms (`indexer.fields.prune_terms`)
# and the transformer reads its first 256 tokens, so the cost of a long query stays bounded.
DEFAULT_MAX_QUERY_CHARS = 32_768
MAX_K = 1000
MAX_FILTERS = 32  # keyword fields one request filters on
MAX_FILTER_VALUES = 1000  # values one filter accepts
MAX_FILTER_VALUE_CHARS = 1024


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(..., ge=-90, le=90, allow_inf_nan=False, description="Latitude in degrees, -90 to 90.")
    lon: float = Field(
        ..., ge=-180, le=180, allow_inf_nan=False, description="Longitude in degrees, -180 to 180."
    )

    def as_tuple(self) -> tuple[float, float]:
        """(lat, lon), as the service takes a location."""
        return (self.lat, self.lon)


# Request fields that /search and /recommend share with the same meaning (and the same documentation).
UserLocation = Annotated[Location | None, Field(description="Where the user is; enables the geo branch.")]
RadiusKm = Annotated[
    float | None,
    Field(gt=0, le=20_000, allow_inf_nan=False, description="Keep only items within this distance, in km."),
]


def _values(value: object) -> object:
    """A filter's value as a list: one string is a list of one; anything else but a list is refused."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise PydanticCustomError("filter_value_type", "must be a string or a list of strings")
    return value


FilterValue = Annotated[str, Field(max_length=MAX_FILTER_VALUE_CHARS)]
FilterValues = Annotated[list[FilterValue], Field(max_length=MAX_FILTER_VALUES)]
KeywordFilters = Annotated[
    dict[
        str,
        Annotated[FilterValues, BeforeValidator(_values, json_schema_input_type=FilterValue | FilterValues)],
    ],
    Field(
        default_factory=dict,
        max_length=MAX_FILTERS,
        description=f"Keyword filters: field -> value or list of values (any of them); at most {MAX_FILTERS} "
        f"fields, {MAX_FILTER_VALUES} values per field and {MAX_FILTER_VALUE_CHARS} characters per value.",
    ),
]


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"query": "vitamin D deficiency increases the risk of fractures", "k": 10}]
        },
    )

    query: str = Field(
        ...,
        min_length=1,
        description="Free text or a whole document (query by document), at least 1 character and at most the "
        f"service's limit (`serve --max-query-chars`, default {DEFAULT_MAX_QUERY_CHARS}); must not be only "
        "white space. BM25 searches a long text by its 64 most informative terms, the transformer reads "
        "its first 256 tokens.",
    )
    k: int = Field(10, ge=1, le=MAX_K, description=f"How many results to return, 1 to {MAX_K}.")
    user_id: str | None = Field(None, max_length=256, description="Who is asking; enables personal branches.")
    location: UserLocation = None
    radius_km: RadiusKm = None
    filters: KeywordFilters
    branches: list[str] | None = Field(None, min_length=1, description="Run only these recall branches.")
    explain: bool = Field(False, description="Include every branch's own candidates and scores.")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank_query", "must contain a non-space character")
        return value


class RecommendRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": "414", "k": 10}, {"items": ["1", "260"], "k": 5}]},
    )

    user_id: str | None = Field(
        None, max_length=256, description="Whose history to start from; unknown = cold start."
    )
    items: list[str] | None = Field(
        None,
        max_length=200,
        description="Recent item ids, oldest first; used instead of (or besides) the history.",
    )
    k: int = Field(10, ge=1, le=MAX_K, description=f"How many items to return, 1 to {MAX_K}.")
    location: UserLocation = None
    radius_km: RadiusKm = None
    filters: KeywordFilters
    exclude_seen: bool = Field(True, description="Leave out items the user (or `items`) already has.")
    explain: bool = Field(
        False, description="Include every branch's own candidates and, with a ranker, each hit's features."
    )


class SearchHit(BaseModel):
    id: str = Field(..., description="External id of the item, as in the corpus.")
    score: float = Field(..., description="Final score; results are sorted by it, best first.")
    title: str
    branches: dict[str, int] = Field(
        ..., description="Recall branches that found the item, with its 1-based rank."
    )
    features: dict[str, float] | None = Field(
        default=None,
        description="With explain and a learned ranker: the item's ranking features and `_score`.",
    )


class BranchCandidate(BaseModel):
    id: str
    rank: int
    score: float


class RankedResponse(BaseModel):
    """The envelope every ranked answer shares (search, recommend, similar): which request, which version
    and what ordered the results."""

    request_id: str = Field(..., description="The X-Request-ID header's value, or an id made up for it.")
    results: list[SearchHit]
    collection: str = Field(..., description="Collection that answered.")
    index_version: str = Field(..., description="Version of the index that answered.")
    scorer: str = Field(
        ...,
        description="What ordered the results: 'fusion' or a ranker's model type ('dense' for /similar).",
    )
    scorer_version: str = Field("", description="Version of the ranker that scored (a ranker artifact's).")
    scorer_reason: str | None = Field(
        None,
        description="Set when the collection has a learned ranker but the fusion order answered: why (the "
        "request is outside the ranker's task, gated branches or training domain, or the ranker failed).",
    )
    degraded: list[str] = Field(
        default_factory=list,
        description="Branches left out of this answer (failed or late); 'ranker' when the ranker failed and "
        "the fusion order answered.",
    )
    took_ms: float
    explain: dict[str, list[BranchCandidate]] | None = Field(
        None, description="With explain: each branch's candidates, best first, with the branch's own scores."
    )


class SearchResponse(RankedResponse):
    """The best `k` items for a query."""


class RecommendResponse(RankedResponse):
    """The best `k` items for a user, a list of recent items, a location, or none of them (popularity)."""


class SimilarResponse(RankedResponse):
    """The items nearest to one item in the transformer space (scorer 'dense'), the item itself excluded."""


class Health(BaseModel):
    status: str
    index_version: str
    documents: int


class CollectionInfo(BaseModel):
    name: str
    version: str
    documents: int
    branches: list[str]
    keyword_fields: list[str]


class KeywordValue(BaseModel):
    value: str
    count: int = Field(description="Items holding the value (in the published version).")


class KeywordValues(BaseModel):
    collection: str
    field: str
    distinct: int = Field(description="How many distinct values the field has.")
    values: list[KeywordValue] = Field(description="The most common values, most items first.")


class VersionInfo(BaseModel):
    searchrec: str
    collections: dict[str, str]


class WorkerVersions(BaseModel):
    pid: int
    versions: dict[str, str]


class ReloadResult(BaseModel):
    switched: list[dict[str, str]] = Field(description="What the worker that answered switched.")
    versions: dict[str, str] = Field(description="The answering worker's versions after the reload.")
    workers: list[WorkerVersions] = Field(
        default_factory=list,
        description="With several worker processes: every worker's versions once all have reloaded.",
    )


class ReloadRefusal(BaseModel):
    """One collection whose newly published version (or ranker) was refused; it keeps serving `serving`."""

    collection: str
    version: str | None = Field(description="The refused collection version (its root's CURRENT).")
    ranker_version: str | None = Field(description="Its ranker root's CURRENT then; null without a ranker.")
    serving: str = Field(description="The collection version still served.")
    error: str = Field(description="Why, e.g. which file fails its checksum.")
    path: str | None = Field(description="The artifact directory holding the file to blame.")
    file: str | None = Field(description="That file, relative to `path` (e.g. bm25/content/impacts.npy).")
    at: str = Field(description="When the reload was refused (UTC, ISO 8601).")


class ReloadRefused(BaseModel):
    """A reload that left some collection on its previous version (500)."""

    detail: str = Field(description="Each refused collection, version and reason, in words.")
    failures: list[ReloadRefusal] = Field(description="The same, one entry per collection.")
    versions: dict[str, str] = Field(description="The versions the answering worker serves.")


MAX_EVENTS = 1000
MAX_TIMESTAMP = 10**11  # seconds since the epoch (the year 5138): a millisecond time (13 digits) is refused


class EventIn(BaseModel):
    """One behaviour event, as a build's behaviour log holds it."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(..., min_length=1, max_length=256, description="Who acted.")
    item_id: str = Field(..., min_length=1, max_length=1024, description="The item acted on (must exist).")
    timestamp: int = Field(
        ...,
        ge=0,
        le=MAX_TIMESTAMP,
        description="When, in seconds since the epoch (UTC), as in the build's log.",
    )
    weight: float = Field(
        1.0, ge=0, allow_inf_nan=False, description="The event's weight (a rating, 1 by default)."
    )


class EventsRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"events": [{"user_id": "u1", "item_id": "4983", "timestamp": 1700000000}]}]
        },
    )

    events: list[EventIn] = Field(
        ..., min_length=1, max_length=MAX_EVENTS, description=f"1 to {MAX_EVENTS} events."
    )


ITEM_BODY_EXAMPLE = {"title": "Vitamin D and fractures", "text": "A randomised trial of vitamin D in adults."}


class WriteResponse(BaseModel):
    """What a write did, once it is on disk and applied."""

    collection: str
    index_version: str = Field(description="The version the write was applied on top of.")
    accepted: int = Field(
        description="Events recorded; 1 for an upsert; 1 for a delete (0: the item was already gone)."
    )
    log_offset: int = Field(description="Where the write log ends after this write.")
