"""The build parameters a collection's manifest records, read through a pydantic model.

`indexer.build` writes them (``manifest.json`` ``params``); offline jobs (a rebuild on a behaviour history)
and the service (the collection's recorded name) read them back here, validated, instead of by dict lookups
with silent defaults. Only the parameters something reads are modelled; the rest stays in the manifest for
people and tools.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from indexer.artifact import read_manifest
from indexer.config import BuildConfig

COLLECTION_KIND = "collection"


class CollectionParams(BaseModel):
    """A collection version's build parameters (``params`` of its manifest)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    config: BuildConfig = Field(description="The configuration the build ran with (encoder resolved).")
    name: str | None = Field(description="The `--name` the build was given; None: none was given.")
    corpus: str = Field(description="The items the build read, as the build was given the path.")


def read_collection_params(version: Path, *, verify: bool = True) -> CollectionParams:
    """The parameters of the collection version directory `version`; `ArtifactError` when it is not one
    (`verify=False` skips the checksums, for a quick look such as the collection's name)."""
    manifest = read_manifest(version, kind=COLLECTION_KIND, verify=verify)
    return CollectionParams.model_validate(manifest["params"])
