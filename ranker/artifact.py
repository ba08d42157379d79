"""Ranker artifacts: a versioned root like an index's, one directory per trained ranker.

Layout of a version (every file checksummed in ``manifest.json``, kind ``ranker``)::

    manifest.json     params: ranker_format, model_type, the feature declaration and names, the recall
                      branches and depth it was trained on, training metrics per model type, the domain
                      profile of its training requests (ranker.domain), libraries
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
from typing import Any

from pydantic import ValidationError

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


@dataclass
class RankerArtifact:
    path: Path
    version: str
    manifest: dict[str, Any]
    declaration: FeatureDeclaration
    model: RankingModel

    @property
    def model_type(self) -> str:
        return str(self.manifest["params"]["model_type"])

    @property
    def domain(self) -> DomainProfile | None:
        """The training requests' profile (None for rankers trained before profiles were recorded)."""
        described = self.manifest["params"].get("domain")
        return DomainProfile.model_validate(described) if described else None

    @property
    def max_candidates(self) -> int | None:
        """How many of a request's best fused candidates the model scores (None: all), as trained."""
        limit = self.manifest["params"].get("training", {}).get("max_candidates")
        return int(limit) if limit is not None else None

    @property
    def task(self) -> str:
        """What the ranker was trained for: "search" (requests with text) or "recommend" (without)."""
        return str(self.manifest["params"].get("training", {}).get("task", "search"))


def read_ranker(path: Path) -> RankerArtifact:
    """Load and check a ranker (root or version directory)."""
    directory = resolve_artifact(path)
    manifest = read_manifest(directory, kind=RANKER_KIND)
    params = manifest.get("params", {})
    found = params.get("ranker_format")
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
        declaration = FeatureDeclaration.model_validate(params["features"])
    except (KeyError, ValidationError) as error:
        raise ArtifactError(f"{directory}: the feature declaration cannot be read: {error}") from None
    try:
        DomainProfile.model_validate(params["domain"]) if params.get("domain") else None
    except ValidationError as error:
        raise ArtifactError(f"{directory}: the domain profile cannot be read: {error}") from None
    model: RankingModel = model_class(kind).load(directory / MODEL_DIR)
    if model.n_features != len(declaration.names):
        raise ArtifactError(
            f"{directory}: the model takes {model.n_features} features, the declaration has "
            f"{len(declaration.names)}"
        )
    return RankerArtifact(directory, str(manifest["parts"]["version"]), manifest, declaration, model)
