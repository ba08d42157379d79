"""Typed feature declarations: which calc op, with which parameters, through which transforms.

A declaration is data (JSON or TOML) parsed into pydantic models, so the exact declaration a ranker was
trained with is stored in its manifest and rebuilt identically at serving. TOML form::

    [[features]]
    name = "bm25"                       # unique column name
    calc = "bm25"                       # a key of ranker.features.calc_ops.CALC_OPS
    transforms = ["max_ratio"]          # keys of ranker.features.transforms.TRANSFORMS, applied in order

    [[features]]
    name = "rank_dense"
    calc = "branch_rank"
    params = { branch = "dense", missing = 101 }
    transforms = [{ op = "reciprocal", k = 60 }]
    optional = true                     # training drops it when the collection cannot compute it

    [[features]]
    name = "dense_z"
    calc = "cosine"
    transforms = ["zscore"]
    gate = "dense"                      # `gated_value` for every candidate when the dense branch found none
                                        # of them (it was gated off, failed or timed out for this request)

`check` lists every feature a collection cannot compute (and why); `resolve` drops the optional ones among
them, which is what training does; a stored declaration is strict: serving refuses it unless satisfiable.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ranker.features.calc_ops import CALC_OPS, REQUIRED
from ranker.features.collection import CollectionView
from ranker.features.io_ops import IO_OPS
from ranker.features.transforms import TRANSFORMS

FORMAT = 1


def _check_params(kind: str, name: str, given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"{kind} {name!r} has no parameter(s) {unknown}; allowed: {sorted(defaults)}")
    missing = sorted(k for k, v in defaults.items() if v is REQUIRED and k not in given)
    if missing:
        raise ValueError(f"{kind} {name!r} needs parameter(s) {missing}")
    return {**defaults, **given}


class TransformSpec(BaseModel):
    """One transformer; TOML accepts a bare name or a table `{ op = "clip", lo = 0, hi = 1 }`."""

    model_config = ConfigDict(extra="allow", frozen=True)

    op: str

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"op": value} if isinstance(value, str) else value

    @field_validator("op")
    @classmethod
    def _known(cls, op: str) -> str:
        if op not in TRANSFORMS:
            raise ValueError(f"unknown transform {op!r}; choose one of {sorted(TRANSFORMS)}")
        return op

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def resolved(self) -> dict[str, Any]:
        return _check_params("transform", self.op, self.params, TRANSFORMS[self.op].defaults)


class FeatureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$")
    calc: str
    params: dict[str, Any] = Field(default_factory=dict)
    transforms: list[TransformSpec] = Field(default_factory=list)
    optional: bool = False
    gate: str | None = None
    gated_value: float = 0.0

    @field_validator("calc")
    @classmethod
    def _known(cls, calc: str) -> str:
        if calc not in CALC_OPS:
            raise ValueError(f"unknown calc op {calc!r}; choose one of {sorted(CALC_OPS)}")
        return calc

    @model_validator(mode="after")
    def _params(self) -> FeatureSpec:
        self.resolved_params()
        for step in self.transforms:
            step.resolved()
        return self

    def resolved_params(self) -> dict[str, Any]:
        return _check_params("calc op", self.calc, self.params, CALC_OPS[self.calc].defaults)

    @property
    def branches(self) -> list[str]:
        """The recall branches whose provenance this feature reads (its calc op's, and its gate)."""
        found = [CALC_OPS[self.calc].branch(self.resolved_params()), self.gate]
        return sorted({b for b in found if b is not None})


class FeatureDeclaration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = FORMAT
    features: list[FeatureSpec] = Field(min_length=1)

    @field_validator("format")
    @classmethod
    def _format(cls, value: int) -> int:
        if value > FORMAT:
            raise ValueError(f"feature declaration format {value} is newer than this searchrec ({FORMAT})")
        return value

    @model_validator(mode="after")
    def _unique(self) -> FeatureDeclaration:
        names = [f.name for f in self.features]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"feature names must be unique; repeated: {repeated}")
        return self

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def branches(self) -> list[str]:
        return sorted({b for f in self.features for b in f.branches})

    @property
    def gates(self) -> list[str]:
        """Branches some feature is gated on; a model covers the requests on which all of them ran."""
        return sorted({f.gate for f in self.features if f.gate is not None})

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def load(cls, path: Path) -> FeatureDeclaration:
        """Read a `.toml` or `.json` declaration file."""
        path = Path(path)
        if path.suffix == ".toml":
            with path.open("rb") as handle:
                return cls.model_validate(tomllib.load(handle))
        if path.suffix == ".json":
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        raise ValueError(f"feature declaration {path} must be a .toml or .json file")


class UnsatisfiableDeclaration(ValueError):
    """A declaration names features the collection (or the pipeline's branches) cannot provide."""


def problems(spec: FeatureSpec, view: CollectionView, branches: Iterable[str] | None = None) -> list[str]:
    """Why `view`'s collection cannot compute `spec` (empty when it can)."""
    reasons = []
    for need in CALC_OPS[spec.calc].needs(spec.resolved_params()):
        reason = IO_OPS[need.op].check(view, need.arg)
        if reason and reason not in reasons:
            reasons.append(reason)
    known = None if branches is None else sorted(branches)
    for branch in spec.branches:
        if known is not None and branch not in known:
            reasons.append(f"no recall branch {branch!r}; the pipeline runs {known}")
    return reasons


def check(
    declaration: FeatureDeclaration, view: CollectionView, branches: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """Feature name -> reasons, for every feature the collection cannot compute."""
    branches = None if branches is None else list(branches)
    found = {spec.name: problems(spec, view, branches) for spec in declaration.features}
    return {name: reasons for name, reasons in found.items() if reasons}


def require(
    declaration: FeatureDeclaration, view: CollectionView, branches: Iterable[str] | None = None
) -> None:
    """Raise `UnsatisfiableDeclaration` listing every feature the collection cannot compute."""
    missing = check(declaration, view, branches)
    if missing:
        listed = "; ".join(f"{name}: {', '.join(reasons)}" for name, reasons in missing.items())
        raise UnsatisfiableDeclaration(f"the feature declaration cannot be computed here: {listed}")


def resolve(
    declaration: FeatureDeclaration, view: CollectionView, branches: Iterable[str] | None = None
) -> FeatureDeclaration:
    """The declaration without its unsatisfiable optional features; required ones must be satisfiable."""
    branches = None if branches is None else list(branches)
    missing = check(declaration, view, branches)
    kept = [f for f in declaration.features if not (f.optional and f.name in missing)]
    resolved = FeatureDeclaration(format=declaration.format, features=kept)
    require(resolved, view, branches)
    return resolved
