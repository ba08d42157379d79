"""CPU-side helpers shared by the faiss backends (IVF and HNSW): metric, filter, scores, files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss as _faiss_module
import numpy as np

from indexer.ann.base import BaseIndex, SearchResult

faiss: Any = _faiss_module  # the bundled stubs miss the GPU API, SearchParameters kwargs and SWIG helpers


def metric_type(metric: str) -> int:
    """The faiss metric for ``metric``: inner product on normalised vectors for cosine, else L2."""
    return faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2


def id_selector(mask: np.ndarray) -> Any:
    """An ``IDSelectorBitmap`` admitting the rows where the boolean ``mask`` is true."""
    return faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little"))


def search_result(index: BaseIndex, dist: np.ndarray, rows: np.ndarray) -> SearchResult:
    """faiss ``(distances, labels)`` of ``index`` as rows and scores, ``-inf`` where faiss found no row."""
    scores = index._to_scores(dist, "ip" if index.metric == "cosine" else "sq_l2")
    return rows.astype(np.int64), np.where(rows >= 0, scores, -np.inf).astype(np.float32)


def write_index(index: Any, path: Path) -> list[str]:
    """Write a CPU faiss index to ``path``; return its file name."""
    faiss.write_index(index, str(path))
    return [path.name]


def read_index(path: Path, dim: int) -> Any:
    """Read the CPU faiss index at ``path``, checking its dimension against ``dim`` from index.json."""
    index = faiss.read_index(str(path))
    if index.d != dim:
        raise ValueError(f"{path}: dimension {index.d}, index.json says {dim}")
    return index
