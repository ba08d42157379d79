"""Ranker artifacts: a versioned root like an index's, one directory per trained ranker.

Layout of a version (every file checksummed in ``manifest.json``, kind ``ranker``)::

    manifest.json     params: ranker_format, model_type, the feature declaration and names, the recall
                      branches and depth it was trained on, its query encoder, training metrics per model
                      type, the domain profile of its training requests (ranker.domain), libraries
    features.json     the feature declaration (also in the manifest, for people and tools)
    model/            the kept model's files (LightGBM text model, or MLP weights and standardisation)

`write_ranker` publishes through `indexer.versions.VersionStore`; `read_ranker` accepts a root (its current
version) or a version directory and refuses what it cannot serve with an `ArtifactError` naming why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from indexer.artifact import ArtifactError, read_manifest, write_manifest
from indexer.versions import VersionStore, resolve_artifact
from ranker.domain import DomainProfile
from ranker.features.declarations import FeatureDeclaration
from ranker.models import MODELS, SELECTION_METRIC, RankingModel, model_class

RANKER_KIND = "ranker"
RANKER_FORMAT = 1
FEATURES_FILE = "features.json"
MODEL_DIR = "model"
LIBRARIES = ("numpy", "lightgbm", "torch", "scikit-learn")


def ranker_libraries() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_ranker(
    root: Path,
    model: RankingModel,
    declaration: FeatureDeclaration,
    *,
    metrics: dict[str, Any],
    training: dict[str, Any],
    domain: DomainProfile | None = None,
    keep: int = 5,
) -> tuple[str, Path]:
    """Write a new ranker version under `root` and publish it; return (version, directory)."""
    store = VersionStore(root)
    with store.build(keep=keep) as (version, staging):
        model.save(staging / MODEL_DIR)
        (staging / FEATURES_FILE).write_text(json.dumps(declaration.to_json(), indent=2), encoding="utf-8")
        params = {
            "ranker_format": RANKER_FORMAT,
            "model_type": model.kind,
            "features": declaration.to_json(),
            "feature_names": declaration.names,
            "branches": declaration.branches,
            "metrics": metrics,
            "selected_by": SELECTION_METRIC,
            "training": training,
            "domain": domain.model_dump() if domain is not None else None,
            "ranker_libraries": ranker_libraries(),
        }
        write_manifest(
            staging, kind=RANKER_KIND, params=params, parts={"version": version, "model": model.kind}
        )
    return version, store.versions_dir / version


class RankerTraining(BaseModel):
    """What the training job recorded about its data and choices; serving reads `task` and
    `max_candidates`, the rest (query encoder, metrics, data paths, counts) is kept as written."""

    model_config = ConfigDict(extra="allow", frozen=True)

    task: Literal["search", "recommend"] = Field(
        default="search",
        description="Requests with text (search) or without (recommend); rankers from before the task was "
        "recorded were all search rankers.",
    )
    max_candidates: int | None = Field(
        default=None,
        ge=1,
        description="How many of a request's best fused candidates the model scores; None: all (also "
        "rankers from before the bound was chosen).",
    )
    query_encoder: str | None = Field(
        default=None,
        description="Search: the encoder kind that embedded the training queries, on which the dense "
        "features were computed (`indexer.encoders.QUERY_ENCODERS`); None for rankers from before it was "
        "recorded.",
    )


class RankerParams(BaseModel):
    """A ranker version's ``params`` (see the module docstring); what serving needs is required."""

    model_config = ConfigDict(extra="allow", frozen=True)

    ranker_format: int = Field(description="Layout version of the artifact; newer ones are refused.")
    model_type: str = Field(description="A key of `ranker.models.MODELS`.")
    features: FeatureDeclaration = Field(description="The feature declaration the model was trained with.")
    training: RankerTraining = Field(default_factory=RankerTraining, description="The training job's record.")
    domain: DomainProfile | None = Field(
        default=None,
        description="Profile of the training requests; None for rankers from before it was recorded.",
    )


class _Format(BaseModel):
    """Just the format, read before anything a newer format may have changed."""

    model_config = ConfigDict(extra="ignore")

    ranker_format: int


@dataclass
class RankerArtifact:
    path: Path
    version: str
    manifest: dict[str, Any]
    params: RankerParams
    model: RankingModel

    @property
    def declaration(self) -> FeatureDeclaration:
        return self.params.features

    @property
    def model_type(self) -> str:
        return self.params.model_type

    @property
    def domain(self) -> DomainProfile | None:
        """The training requests' profile (None for rankers trained before profiles were recorded)."""
        return self.params.domain

    @property
    def max_candidates(self) -> int | None:
        """How many of a request's best fused candidates the model scores (None: all), as trained."""
        return self.params.training.max_candidates

    @property
    def task(self) -> str:
        """What the ranker was trained for: "search" (requests with text) or "recommend" (without)."""
        return self.params.training.task


def _ranker_params(directory: Path, params: Any) -> RankerParams:
    """`params` validated, or an `ArtifactError` naming what this searchrec cannot serve."""
    try:
        found: Any = _Format.model_validate(params).ranker_format
    except ValidationError:
        found = params.get("ranker_format") if isinstance(params, dict) else None
    if not isinstance(found, int) or found > RANKER_FORMAT:
        raise ArtifactError(
            f"{directory}: ranker format {found!r}; this searchrec reads up to {RANKER_FORMAT}. Retrain it."
        )
    kind = params.get("model_type")
    if kind not in MODELS:
        raise ArtifactError(
            f"{directory}: unknown model type {kind!r}; this searchrec knows {sorted(MODELS)}"
        )
    try:
        return RankerParams.model_validate(params)
    except ValidationError as error:
        raise ArtifactError(f"{directory}: the ranker's parameters cannot be read: {error}") from None


def read_ranker(path: Path) -> RankerArtifact:
    """Load and check a ranker (root or version directory)."""
    directory = resolve_artifact(path)
    manifest = read_manifest(directory, kind=RANKER_KIND)
    params = _ranker_params(directory, manifest.get("params", {}))
    model: RankingModel = model_class(params.model_type).load(directory / MODEL_DIR)
    if model.n_features != len(params.features.names):
        raise ArtifactError(
            f"{directory}: the model takes {model.n_features} features, the declaration has "
            f"{len(params.features.names)}"
        )
    return RankerArtifact(directory, str(manifest["parts"]["version"]), manifest, params, model)
