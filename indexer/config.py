"""Typed build configuration; every key has a documented default and unknown keys are refused."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class BuildConfig(BaseModel):
    """Parameters of one collection build; stored in the manifest so the service analyses queries the same way."""

    model_config = ConfigDict(extra="forbid")

    analyzer: str = Field("english", description="Text analyzer: english, chinese or cjk_bigram.")
    k1: float = Field(1.5, gt=0, description="BM25 term-frequency saturation.")
    b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation.")
    ann_backend: str = Field("hnsw", description="Vector index backend for the dense branch.")
    ann_params: dict[str, int | float | str] = Field(
        default_factory=dict, description="Backend build parameters."
    )
    encoder_batch_size: int = Field(64, ge=1, description="Texts per transformer batch.")
    keep_versions: int = Field(3, ge=1, description="Published versions kept under the root.")
    limit: int | None = Field(
        None, ge=1, description="Index only the first N documents (for slices and tests)."
    )

    @classmethod
    def from_toml(cls, path: Path) -> BuildConfig:
        import tomllib

        with Path(path).open("rb") as handle:
            return cls.model_validate(tomllib.load(handle))
