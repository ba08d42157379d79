"""The build parameters a collection's manifest records, read through a pydantic model.

`indexer.build` writes them (``manifest.json`` ``params``); offline jobs (a rebuild on a behaviour history)
and the online side (the collection's recorded name, its encoder and which optional parts it holds) read
them back here, validated, instead of by dict lookups with silent defaults. Only the parameters something
reads are modelled; the rest stays in the manifest for people and tools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from indexer.artifact import MANIFEST, ArtifactError, read_manifest
from indexer.config import BuildConfig
from indexer.schemas import ENCODER_KINDS, SUPPLIED

COLLECTION_KIND = "collection"


class EncoderParams(BaseModel):
    """What embedded a version's items (``params.encoder``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: str = Field(
        description="The encoder kind (a build's ``auto`` resolved); queries share its space. ``supplied``: "
        "the items carried their own vectors, and no encoder embeds a text query into their space."
    )

    @field_validator("kind")
    @classmethod
    def _known(cls, value: str) -> str:
        if value != SUPPLIED and value not in ENCODER_KINDS:
            raise ValueError(f"unknown encoder {value!r}; choose one of {[*sorted(ENCODER_KINDS), SUPPLIED]}")
        return value


class TrainedPart(BaseModel):
    """A part the build trains when it can (``params.word2vec``): whether it did."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    trained: bool = Field(description="False: the part is absent (disabled, or nothing to train it on).")


class CollectionParams(BaseModel):
    """A collection version's build parameters (``params`` of its manifest)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    config: BuildConfig = Field(description="The configuration the build ran with (encoder resolved).")
    name: str | None = Field(description="The `--name` the build was given; None: none was given.")
    corpus: str = Field(description="The items the build read, as the build was given the path.")
    encoder: EncoderParams = Field(description="The encoder that embedded the items.")
    word2vec: TrainedPart = Field(description="Whether the version holds Word2Vec text vectors.")
    behaviour: dict[str, Any] | None = Field(
        description="What the build derived from a behaviour log (`indexer.behaviour`); None: it had none."
    )


def read_collection_params(version: Path, *, verify: bool = True) -> CollectionParams:
    """The parameters of the collection version directory `version`; `ArtifactError` when it is not one
    (`verify=False` skips the checksums, for a quick look such as the collection's name)."""
    manifest = read_manifest(version, kind=COLLECTION_KIND, verify=verify)
    return collection_params(version, manifest)


def collection_params(version: Path, manifest: dict) -> CollectionParams:
    """The validated ``params`` of the manifest read from the version directory `version`; `ArtifactError`
    naming the manifest when they cannot be read (e.g. written by a build that recorded less)."""
    try:
        return CollectionParams.model_validate(manifest["params"])
    except ValidationError as error:
        raise ArtifactError(
            f"{version}: the build parameters in {MANIFEST} cannot be read: {error}",
            path=Path(version),
            file=MANIFEST,
        ) from None
