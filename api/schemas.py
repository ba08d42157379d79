"""Request and response models of the REST API; their constraints are what a 422 explains."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_QUERY_CHARS = 2048
MAX_K = 1000


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
        max_length=MAX_QUERY_CHARS,
        description=f"Free text, 1 to {MAX_QUERY_CHARS} characters; must not be only white space.",
    )
    k: int = Field(10, ge=1, le=MAX_K, description=f"How many results to return, 1 to {MAX_K}.")


class SearchHit(BaseModel):
    id: str = Field(..., description="External id of the item, as in the corpus.")
    score: float = Field(..., description="Final score; results are sorted by it, best first.")
    title: str
    branches: dict[str, int] = Field(
        ..., description="Recall branches that found the item, with its 1-based rank."
    )


class SearchResponse(BaseModel):
    results: list[SearchHit]
    index_version: str = Field(..., description="Version of the index that answered.")
    scorer: str = Field(..., description="What ordered the results: 'fusion' or a ranker's name.")
    degraded: list[str] = Field(
        default_factory=list, description="Branches left out of this answer (failed or late)."
    )
    took_ms: float


class Health(BaseModel):
    status: str
    index_version: str
    documents: int
