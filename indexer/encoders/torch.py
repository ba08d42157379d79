"""The ``torch`` encoder: all-MiniLM-L6-v2 in full precision through sentence-transformers.

The packaged weights (`indexer.encoders.base.packaged_model_dir`) load on first use, on the device
asked for: ``auto`` (the default) takes the first CUDA GPU torch sees and the CPU when it sees none
(`resolve_device`); ``cpu``, ``cuda`` or ``cuda:N`` pin it. Texts are embedded in batches, mean-pooled
over at most 256 tokens and L2-normalised (float32, 384 dimensions). MiniLM has no query form: queries are
embedded like documents.

GPU and CPU vectors of one text agree to float rounding (on SciFact at most 2.4e-07 apart per component,
the same top 10 for every test query: BENCHMARKS.md "Encoding on a GPU"), so vectors from either share one
embedding-cache namespace.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from indexer.encoders.base import (
    MODEL_NAME,
    TORCH,
    hub_offline,
    model_fingerprint,
    packaged_dim,
    packaged_model_dir,
)
from indexer.schemas import AUTO_DEVICE, check_device


def resolve_device(device: str) -> str:
    """The torch device of a setting: ``auto`` is ``cuda`` when torch sees a GPU, else ``cpu``; a CUDA
    device torch cannot see is a ValueError (a build asked for a GPU the machine lacks)."""
    check_device(device)
    if device == "cpu":
        return device
    import torch

    if device == AUTO_DEVICE:
        return "cuda" if torch.cuda.is_available() else "cpu"
    index = int(device.partition(":")[2] or 0)
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
        raise ValueError(f"encoder device {device!r}: torch sees {seen} CUDA GPU(s); use 'auto' or 'cpu'")
    return device


class Encoder:
    """The ``torch`` kind: batched, L2-normalised sentence-transformers embeddings; loads on first use."""

    kind = TORCH
    multilingual = False

    def __init__(self, batch_size: int = 64, device: str = AUTO_DEVICE) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.device_setting = check_device(device)

    @cached_property
    def device(self) -> str:
        """The torch device the model runs on (`resolve_device` of the setting)."""
        return resolve_device(self.device_setting)

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
