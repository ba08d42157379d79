"""The schemas a build configuration is made of: input column mappings, Word2Vec parameters, encoder names.

A leaf module (pydantic only), so `indexer.config` and whatever reads a configuration (the ranker's features,
the online side) import it without pulling in the item readers (pyarrow), gensim or the encoders. The modules
that use these schemas (`indexer.items`, `indexer.events`, `indexer.word2vec`, `indexer.encoder_choice`)
import them from here.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# ---------------------------------------------------------------------------------------- input columns


class ItemSchema(BaseModel):
    """Where each part of an item comes from: values are source column names.

    `text` accepts a column name, a list of column names (field name = column name) or a mapping
    `{field name: column}`. `tags` may hold a list or a string split on `tags_delimiter`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Column with the external item id.")
    text: dict[str, str] = Field(min_length=1, description="Text fields: field name -> column.")
    category: str | None = Field(default=None, description="Column with one category label.")
    tags: str | None = Field(default=None, description="Column with tags (a list, or a delimited string).")
    tags_delimiter: str | None = Field(
        default="|", min_length=1, description="Separator of a tag string; None: one tag."
    )
    lat: str | None = Field(default=None, description="Column with latitude in degrees, [-90, 90].")
    lon: str | None = Field(default=None, description="Column with longitude in degrees, [-180, 180].")
    popularity: str | None = Field(default=None, description="Column with a numeric popularity prior.")
    numeric_features: dict[str, str] = Field(
        default_factory=dict, description="Feature name -> numeric column."
    )
    categorical_features: dict[str, str] = Field(default_factory=dict, description="Feature name -> column.")
    vector: str | None = Field(
        default=None,
        description="Column with the item's own embedding (`indexer.item_vectors`); the build then indexes "
        "these vectors instead of encoding the text.",
    )

    @field_validator("text", mode="before")
    @classmethod
    def _text_fields(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {value: value}
        if isinstance(value, list | tuple):
            return {column: column for column in value}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ItemSchema:
        if (self.lat is None) != (self.lon is None):
            raise ValueError(f"lat and lon come together; got lat={self.lat!r}, lon={self.lon!r}")
        clash = set(self.numeric_features) & set(self.categorical_features)
        if clash:
            raise ValueError(f"feature names {sorted(clash)} are both numeric and categorical")
        return self

    def columns(self) -> list[str]:
        """Every source column the mapping reads, in a stable order without repeats."""
        named = [self.id, *self.text.values(), self.category, self.tags, self.lat, self.lon, self.popularity]
        named += [*self.numeric_features.values(), *self.categorical_features.values(), self.vector]
        return list(dict.fromkeys(c for c in named if c is not None))


class EventSchema(BaseModel):
    """Source columns of a behaviour log; timestamps are epoch seconds (int or float) or ISO-8601 strings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(default="user_id", description="Column with the user id.")
    item_id: str = Field(default="item_id", description="Column with the item id.")
    timestamp: str = Field(default="timestamp", description="Column with the event time.")
    weight: str | None = Field(
        default=None, description="Optional column with a numeric weight (rating, dwell time)."
    )

    def columns(self) -> list[str]:
        return list(dict.fromkeys(c for c in (self.user_id, self.item_id, self.timestamp, self.weight) if c))


# ---------------------------------------------------------------------------------------------- Word2Vec
Weighting = Literal["mean", "sif"]
WEIGHTINGS: tuple[str, ...] = get_args(Weighting)
DEFAULT_SIF_A = 1e-4  # best of 1e-3 ... 1e-5 on SciFact train (see `indexer.word2vec`)
DEFAULT_REMOVE_PC = False  # within noise for SIF on SciFact train (see `indexer.word2vec`)


class Word2VecParams(BaseModel):
    """Training parameters; the defaults suit an analysed (lower-cased, stemmed) corpus of about 1M tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vector_size: int = Field(default=100, ge=1, description="Dimension of the word vectors.")
    window: int = Field(default=5, ge=1, description="Largest distance between a word and a context word.")
    shrink_windows: bool = Field(
        default=True, description="Sample the window per word in [1, window]; False for sets."
    )
    min_count: int = Field(
        default=2, ge=1, description="Words seen fewer times are dropped from the vocabulary."
    )
    epochs: int = Field(default=20, ge=1, description="Passes over the corpus.")
    sg: Literal[0, 1] = Field(default=1, description="1 = skip-gram, 0 = CBOW.")
    negative: int = Field(default=5, ge=1, description="Negative samples per positive pair.")
    sample: float = Field(
        default=1e-3, ge=0, description="Down-sampling threshold for frequent words (0 = off)."
    )
    alpha: float = Field(default=0.025, gt=0, description="Initial learning rate.")
    seed: int = Field(default=0, description="Seed for initial vectors and sampling.")
    workers: int = Field(
        default=1, ge=1, description="Training threads; only workers=1 is bit-for-bit reproducible."
    )


# Item2vec (Barkan and Koenigstein, 2016): skip-gram over what one user consumed; keep rare items.
ITEM2VEC_PARAMS = Word2VecParams(vector_size=64, window=10, min_count=1, epochs=20)


# ---------------------------------------------------------------------------------------------- encoders
AUTO = "auto"
# The kinds `indexer.encoders.make_encoder` builds (its `ENCODERS` keys; a test keeps the two equal).
ENCODER_KINDS = ("torch", "onnx-int8", "e5-multilingual")
# What a manifest records when the items carried their own vectors (the `vector` role): no encoder ran, and
# none embeds a text query into their space.
SUPPLIED = "supplied"


AUTO_DEVICE = "auto"
DEVICE = re.compile(r"^(auto|cpu|cuda(:[0-9]+)?)$")


def check_device(device: str) -> str:
    """`device` if it names an encoder device setting (auto, cpu, cuda, cuda:N), else ValueError."""
    if not DEVICE.match(device):
        raise ValueError(f"unknown encoder device {device!r}; choose auto, cpu, cuda or cuda:N")
    return device


def check_encoder_setting(value: str) -> str:
    """`value` if a build configuration may name it (``auto``, ``supplied`` or an encoder kind), else
    ValueError listing them."""
    if value not in (AUTO, SUPPLIED) and value not in ENCODER_KINDS:
        choices = [AUTO, *sorted(ENCODER_KINDS), SUPPLIED]
        raise ValueError(f"unknown encoder {value!r}; choose one of {choices}")
    return value
