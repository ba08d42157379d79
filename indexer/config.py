"""Typed build configuration; every key has a documented default and unknown keys are refused.

A TOML file maps onto `BuildConfig` one to one::

    analyzer = "chinese"                 # default analyzer of every field that names none (default: auto)
    [[fields]]                           # one BM25 field per table; scores are summed with the boosts
    name = "words"
    [[fields]]
    name = "chars"
    analyzer = "cjk_unigram"
    [items]                              # source columns of a JSONL/CSV/Parquet item file
    id = "movieId"
    text = ["title"]
    tags = "genres"
    [events]                             # source columns of the behaviour log
    user_id = "userId"
    [behaviour]
    half_life_days = 30.0

`--map ROLE=COLUMN` on the command line overrides single column keys and `--map ROLE=` turns an optional one
off (see `apply_column_map`). Item roles neither sets are filled from the file's column names
(`indexer.columns`); `ItemColumns.model_fields_set` tells which were set.

A leaf of the package: it imports only pydantic and `indexer.schemas`, so reading a configuration never loads
an encoder, pyarrow or gensim.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from indexer.schemas import (
    AUTO,
    DEFAULT_REMOVE_PC,
    DEFAULT_SIF_A,
    ITEM2VEC_PARAMS,
    EventSchema,
    ItemSchema,
    Weighting,
    Word2VecParams,
    check_device,
    check_encoder_setting,
)

FIELD_NAME = re.compile(r"^[A-Za-z0-9_]+$")
# Docstore record keys the build writes beside the text fields; no text field may be named like them.
RESERVED_RECORD_KEYS = frozenset({"category", "tags", "lat", "lon", "popularity", "features"})


class FieldConfig(BaseModel):
    """One BM25 field: which item text fields it indexes, with which analyzer, and its boost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Field name (letters, digits, underscore); a directory under bm25/.")
    sources: list[str] = Field(
        default_factory=list,
        description="Item text fields joined (newline) into this field; empty: all text fields.",
    )
    analyzer: str | None = Field(
        default=None, description="Analyzer of this field; None: the build's `analyzer`."
    )
    boost: float = Field(default=1.0, gt=0, description="Multiplier of this field's BM25 score in the sum.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not FIELD_NAME.match(value):
            raise ValueError(f"field name {value!r} must match {FIELD_NAME.pattern}")
        return value


class ItemColumns(ItemSchema):
    """Source columns of a JSONL/CSV/Parquet item file (a BEIR folder always uses _id, title, text).

    A build fills the roles not set here from the file's column names (`indexer.columns`); the defaults
    below stand only where the file shows no columns at all.
    """

    id: str = Field(default="id", description="Column with the external item id.")
    text: dict[str, str] = Field(
        default_factory=lambda: {"text": "text"},
        min_length=1,
        description="Text fields: a column, a list of columns, or {field name: column}.",
    )

    @model_validator(mode="after")
    def _field_names(self) -> ItemColumns:
        clash = RESERVED_RECORD_KEYS & set(self.text)
        if clash:
            raise ValueError(
                f"text field names {sorted(clash)} are reserved; rename them with {{name: column}}"
            )
        features = [*self.numeric_features, *self.categorical_features]
        clash = RESERVED_RECORD_KEYS & set(features)
        if clash:
            raise ValueError(f"feature names {sorted(clash)} are reserved for built-in columns; rename them")
        bad = [name for name in features if not FIELD_NAME.match(name)]
        if bad:
            raise ValueError(f"feature names {bad} must match {FIELD_NAME.pattern} (they name files)")
        return self


class BehaviourConfig(BaseModel):
    """What the build derives from a behaviour log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    half_life_days: float = Field(
        default=30.0,
        gt=0,
        description="Popularity half-life: an event this old counts half as much as the newest.",
    )
    weighted_popularity: bool = Field(
        default=False, description="Sum event weights into popularity instead of counting events."
    )
    item2vec: bool = Field(
        default=True, description="Train item2vec on the users' time-ordered item sequences."
    )
    item2vec_params: Word2VecParams = Field(
        default_factory=lambda: ITEM2VEC_PARAMS, description="item2vec training parameters."
    )
    min_sequence: int = Field(
        default=2, ge=1, description="Users with fewer events are left out of item2vec."
    )


class TextVectorsConfig(BaseModel):
    """Word2Vec trained on the analysed corpus, and document vectors from its word vectors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Train text Word2Vec and index document vectors.")
    analyzer: str | None = Field(
        default=None, description="Analyzer of the training tokens; None: the first field's."
    )
    params: Word2VecParams = Field(
        default_factory=Word2VecParams, description="Word2Vec training parameters."
    )
    weighting: Weighting = Field(default="sif", description="Word weighting of document vectors.")
    sif_a: float = Field(default=DEFAULT_SIF_A, gt=0, description="SIF smoothing a (weight a / (a + p(w))).")
    remove_pc: bool = Field(
        default=DEFAULT_REMOVE_PC, description="Remove the first principal component of document vectors."
    )


class BuildConfig(BaseModel):
    """Parameters of one build; stored in the manifest so the service analyses queries the same way."""

    model_config = ConfigDict(extra="forbid")

    analyzer: str = Field(
        default="auto",
        description="Default text analyzer: auto (by script: Chinese words and characters, CJK bigrams, "
        "English stemming), english, chinese, cjk_bigram or cjk_unigram.",
    )
    fields: list[FieldConfig] = Field(
        default_factory=lambda: [FieldConfig(name="content")],
        min_length=1,
        description="BM25 fields. Default: one field 'content' over all text fields (on SciFact train "
        "nDCG@10 0.696, against 0.674 for separate title and text fields with boost 1).",
    )
    k1: float = Field(default=1.5, gt=0, description="BM25 term-frequency saturation.")
    b: float = Field(default=0.75, ge=0, le=1, description="BM25 length normalisation.")
    ann_backend: str = Field(
        default="hnsw", description="Vector index backend for the dense and word2vec vectors."
    )
    ann_params: dict[str, int | float | str] = Field(
        default_factory=dict, description="Backend build parameters."
    )
    encoder: str = Field(
        default=AUTO,
        description="Transformer: auto (e5-multilingual when under half of the items' letters are Latin, "
        "else torch), torch (all-MiniLM-L6-v2, English, fp32), onnx-int8 (the same, quantised, faster on "
        "CPU) or e5-multilingual (multilingual-e5-small, 4-bit; needs AVX2). supplied: the items carry "
        "their own vectors (the `vector` column, which then must be mapped); auto also means that when "
        "the vector column is mapped, and an encoder kind is refused with one.",
    )
    embedding_cache: bool = Field(
        default=True,
        description="Memoise embeddings under ROOT/cache so a rebuild encodes only changed items.",
    )
    encoder_batch_size: int = Field(default=64, ge=1, description="Texts per transformer batch.")
    encoder_device: str = Field(
        default="auto",
        description="Where the torch encoder runs: auto (the first CUDA GPU torch sees, else the CPU), cpu, "
        "cuda or cuda:N. The other encoders run on the CPU.",
    )
    keep_versions: int = Field(default=3, ge=1, description="Published versions kept under the root.")
    shards: int = Field(
        default=1,
        ge=1,
        description="Split BM25, the dense index and the forward index into this many row ranges, BM25 "
        "scored with the whole corpus's statistics (`indexer.shards`); 1: one of each.",
    )
    limit: int | None = Field(
        default=None, ge=1, description="Index only the first N documents (for slices and tests)."
    )
    name: str | None = Field(
        default=None, description="Collection name; None: the index root's directory name."
    )
    items: ItemColumns = Field(default_factory=ItemColumns, description="Item file column mapping.")
    events: EventSchema = Field(default_factory=EventSchema, description="Behaviour log column mapping.")
    skip_bad_rows: bool = Field(
        default=False, description="Leave bad input rows out (and report them) instead of failing."
    )
    behaviour: BehaviourConfig = Field(default_factory=BehaviourConfig, description="Behaviour settings.")
    word2vec: TextVectorsConfig = Field(default_factory=TextVectorsConfig, description="Text Word2Vec.")

    @field_validator("encoder")
    @classmethod
    def _known_encoder(cls, value: str) -> str:
        return check_encoder_setting(value)

    @field_validator("encoder_device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        return check_device(value)

    @model_validator(mode="after")
    def _unique_fields(self) -> BuildConfig:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"field names must be unique, got {names}")
        return self

    def field_analyzer(self, field: FieldConfig) -> str:
        return field.analyzer or self.analyzer

    @classmethod
    def from_toml(cls, path: Path) -> BuildConfig:
        import tomllib

        with Path(path).open("rb") as handle:
            return cls.model_validate(tomllib.load(handle))


FEATURE_PREFIXES = {"numeric.": "numeric_features", "categorical.": "categorical_features"}
# `--map` roles: the single-column keys of the item and event mappings, in declaration order.
ITEM_ROLES = tuple(name for name in ItemColumns.model_fields if name not in FEATURE_PREFIXES.values())
EVENT_ROLES = tuple(EventSchema.model_fields)
# Roles `--map ROLE=` cannot turn off: every item and event needs them.
REQUIRED_ROLES = ("id", "text", "user_id", "item_id", "timestamp")


def _parse_pair(pair: str) -> tuple[str, str | None]:
    """`ROLE=COLUMN` as (role, column); `ROLE=` as (role, None), which turns an optional role off."""
    role, sep, column = pair.partition("=")
    role, column = role.strip(), column.strip()
    if not sep or not role:
        raise ValueError(
            f"column mapping {pair!r} must look like ROLE=COLUMN (e.g. id=movieId) or ROLE= (e.g. lat=)"
        )
    if not column and role in REQUIRED_ROLES:
        optional = [r for r in (*ITEM_ROLES, *EVENT_ROLES) if r not in REQUIRED_ROLES]
        raise ValueError(
            f"{pair!r} would turn off {role!r}, which every build needs; only these roles can be turned "
            f"off: {[*optional, 'numeric.NAME', 'categorical.NAME']}"
        )
    return role, column or None


def _renamed(part: str) -> tuple[str, str, str]:
    """`name:column` or `column` (the field takes the column's name)."""
    name, sep, column = part.partition(":")
    return (name, sep, column) if sep else (part, ":", part)


def _set_feature(items: dict[str, Any], config: BuildConfig, key: str, name: str, column: str | None) -> None:
    features = items.setdefault(key, dict(getattr(config.items, key)))
    if column is None:
        features.pop(name, None)
    else:
        features[name] = column


def apply_column_map(config: BuildConfig, pairs: Iterable[str]) -> BuildConfig:
    """`config` with `ROLE=COLUMN` overrides applied (later pairs win), validated again.

    Item roles: id, text (comma-separated columns; `name:column` renames a field), category, tags,
    tags_delimiter, lat, lon, popularity, vector (the items' own embeddings), numeric.NAME,
    categorical.NAME. Event roles: user_id, item_id, timestamp, weight. `ROLE=` turns an optional role off
    (lat= or lon= turns both coordinates off), so the build does not fill it from a column named like it
    (`indexer.columns`). Roles stay unset unless the config or a pair sets them, which is how the build
    tells explicit roles from conventional ones.
    """
    items: dict[str, Any] = config.items.model_dump(exclude_unset=True)
    events: dict[str, Any] = config.events.model_dump(exclude_unset=True)
    for pair in pairs:
        role, column = _parse_pair(pair)
        prefix = next((p for p in FEATURE_PREFIXES if role.startswith(p)), None)
        if prefix is not None and role[len(prefix) :]:
            _set_feature(items, config, FEATURE_PREFIXES[prefix], role[len(prefix) :], column)
        elif role == "text" and column is not None:
            parts = [part.strip() for part in column.split(",") if part.strip()]
            items["text"] = {name: source for name, _, source in (_renamed(part) for part in parts)}
        elif role in ("lat", "lon") and column is None:
            items["lat"] = items["lon"] = None
        elif role in ITEM_ROLES:
            items[role] = column
        elif role in EVENT_ROLES:
            events[role] = column
        else:
            allowed = [*ITEM_ROLES, *EVENT_ROLES, "numeric.NAME", "categorical.NAME"]
            raise ValueError(f"unknown column role {role!r} in {pair!r}; choose one of {allowed}")
    settings = config.model_dump(exclude_unset=True)
    return BuildConfig.model_validate({**settings, "items": items, "events": events})
