"""Inverted-file indices from faiss: IVF-Flat (exact scores inside probed lists) and IVF-PQ (compressed).

Training happens on the first ``add`` (on a seeded sample of at most ``train_size`` rows); ``nlist``
defaults to about ``4 * sqrt(n)`` of that first batch, capped at ``n``. Very small first batches are
padded with jittered copies so that k-means always has enough points. Later adds reuse the trained
quantizer, so make the first batch representative (or pass ``nlist``).

GPU: with a faiss-gpu build and a visible GPU (``use_gpu=None`` auto-detects, ``True`` requires it,
``False`` forces CPU) training, adding and unfiltered search run on GPU 0. Saving always writes a CPU
index, and searches with an ``allowed`` mask (faiss GPU indices take no ``IDSelector``) or ``k`` above
the GPU limit run on a CPU copy that is cached until the next ``add``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from indexer.ann._faiss import faiss, id_selector, metric_type, read_index, search_result, write_index
from indexer.ann.base import BaseIndex, SearchResult

INDEX_FILE = "faiss.index"
GPU_MAX_K = 2048
_MIN_POINTS_PER_CENTROID = 39
_GPU_PQ_BYTES = (96, 64, 56, 48, 40, 32, 28, 24, 20, 16, 12, 8, 4, 3, 2, 1)
_gpu_resources: Any = None


def gpu_available() -> bool:
    """True when this faiss build has GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _to_gpu(index: Any, float16_tables: bool) -> Any:
    global _gpu_resources
    if _gpu_resources is None:
        _gpu_resources = faiss.StandardGpuResources()
    options = faiss.GpuClonerOptions()
    options.useFloat16 = float16_tables
    return faiss.index_cpu_to_gpu(_gpu_resources, 0, index, options)


def default_nlist(n: int) -> int:
    """About 4 * sqrt(n) lists, at least 1 and at most n."""
    return max(1, min(n, round(4 * math.sqrt(n))))


class _FaissIvf(BaseIndex):
    """Shared IVF logic; subclasses build the untrained CPU index in ``_make``."""

    defaults: ClassVar[dict[str, Any]] = {
        "nlist": None,
        "nprobe": 32,
        "train_size": None,
        "kmeans_iters": 10,
        "seed": 1234,
        "use_gpu": None,
    }
    search_param_names: ClassVar[tuple[str, ...]] = ("nprobe",)
    load_overrides: ClassVar[dict[str, Any]] = {"use_gpu": None}  # a GPU-built index loads anywhere

    def __init__(self, dim: int, *, metric: str = "cosine", **params: Any) -> None:
        super().__init__(dim, metric=metric, **params)
        use_gpu = self._params["use_gpu"]
        if use_gpu not in (None, True, False):
            raise ValueError(f"use_gpu must be None (auto), True or False, got {use_gpu!r}")
        if use_gpu and not gpu_available():
            raise ValueError("use_gpu=True but this faiss build has no GPU support or sees no GPU")
        self._on_gpu = bool(gpu_available() if use_gpu is None else use_gpu)
        self._metric_type = metric_type(metric)
        self._index: Any = None  # GPU index when self._on_gpu, else CPU
        self._cpu_copy: Any = None

    def _make(self, nlist: int) -> Any:
        raise NotImplementedError

    def _min_train_points(self, nlist: int) -> int:
        return nlist

    # ------------------------------------------------------------------ building
    def _count(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def _add(self, x: np.ndarray) -> None:
        if self._index is None:
            self._train(x)
        assert self._index is not None
        self._index.add(x)
        self._cpu_copy = None

    def _train(self, x: np.ndarray) -> None:
        nlist = int(self._params["nlist"] or default_nlist(len(x)))
        if nlist < 1:
            raise ValueError(f"nlist must be a positive integer, got {self._params['nlist']!r}")
        index = self._make(nlist)
        self._params["nlist"] = nlist
        if self._on_gpu:
            index = _to_gpu(index, float16_tables=isinstance(index, faiss.IndexIVFPQ))
        pq_cp = getattr(getattr(index, "pq", None), "cp", None)
        for cp in (index.cp, pq_cp) if pq_cp is not None else (index.cp,):
            cp.niter = int(self._params["kmeans_iters"])
            cp.seed = int(self._params["seed"])
            cp.min_points_per_centroid = 1  # small corpora are handled by the padding below
        index.train(self._training_sample(x, nlist))
        self._index = index
        self._apply_search_params()

    def _training_sample(self, x: np.ndarray, nlist: int) -> np.ndarray:
        rng = np.random.default_rng(int(self._params["seed"]))
        size = self._params["train_size"] or max(_MIN_POINTS_PER_CENTROID * nlist, 10_000)
        if len(x) > size:
            x = x[np.sort(rng.choice(len(x), size=int(size), replace=False))]
        need = self._min_train_points(nlist)
        if len(x) < need:  # too few points for k-means: add jittered copies
            reps = np.tile(x, (math.ceil(need / len(x)), 1))[:need]
            scale = 1e-3 * (float(np.std(x)) or 1.0)
            x = (reps + rng.normal(scale=scale, size=reps.shape)).astype(np.float32)
        return np.ascontiguousarray(x, dtype=np.float32)

    # ------------------------------------------------------------------ searching
    def _apply_search_params(self) -> None:
        if self._index is not None:
            nprobe = min(int(self._params["nprobe"]), int(self._params["nlist"]))
            self._index.nprobe = min(nprobe, GPU_MAX_K) if self._on_gpu else nprobe

    def _cpu(self) -> Any:
        """The CPU index (a cached copy when running on GPU)."""
        assert self._index is not None
        if not self._on_gpu:
            return self._index
        if self._cpu_copy is None:
            self._cpu_copy = faiss.index_gpu_to_cpu(self._index)
        return self._cpu_copy

    def _search(
        self, q: np.ndarray, k: int, mask: np.ndarray | None, nprobe: int | None = None
    ) -> SearchResult:
        nprobe = min(int(nprobe or self._params["nprobe"]), int(self._params["nlist"]))
        if self._on_gpu and mask is None and k <= GPU_MAX_K and nprobe <= GPU_MAX_K:
            self._index.nprobe = nprobe
            dist, rows = self._index.search(q, k)
            self._apply_search_params()
        else:
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            if mask is not None:
                params.sel = id_selector(mask)
            dist, rows = self._cpu().search(q, k, params=params)
        return search_result(self, dist, rows)

    def _complete(self, q: np.ndarray, k: int, mask: np.ndarray | None) -> SearchResult:
        """Probe every list: all (allowed) rows are scanned, so k results come back."""
        return self._search(q, k, mask, nprobe=int(self._params["nlist"]))

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        """Vectors decoded from the inverted lists (exact for IVF-Flat, the PQ approximation for IVF-PQ)."""
        index = self._cpu()
        ivf = faiss.extract_index_ivf(index)
        ivf.make_direct_map()
        return index.reconstruct_batch(np.ascontiguousarray(rows, dtype=np.int64))

    # ------------------------------------------------------------------ persistence
    def _save_files(self, directory: Path) -> list[str]:
        if self._index is None:
            raise ValueError(
                f"cannot save an empty {self.name!r} index: add vectors first (IVF needs training)"
            )
        return write_index(self._cpu(), directory / INDEX_FILE)

    def _load_files(self, directory: Path, meta: dict[str, Any]) -> None:
        index = read_index(directory / INDEX_FILE, self.dim)
        self._index = _to_gpu(index, isinstance(index, faiss.IndexIVFPQ)) if self._on_gpu else index
        self._apply_search_params()


class IvfFlatIndex(_FaissIvf):
    """faiss IndexIVFFlat. Build: ``nlist``, ``train_size``, ``kmeans_iters``, ``seed``, ``use_gpu``;
    search: ``nprobe``."""

    name: ClassVar[str] = "faiss_ivf_flat"

    def _make(self, nlist: int) -> Any:
        quantizer = faiss.IndexFlat(self.dim, self._metric_type)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, self._metric_type)
        index.own_fields = True
        quantizer.this.disown()
        return index


class IvfPqIndex(_FaissIvf):
    """faiss IndexIVFPQ: ``m`` sub-quantizers (default ~dim/8, GPU-friendly) of ``nbits`` bits each."""

    name: ClassVar[str] = "faiss_ivf_pq"
    defaults: ClassVar[dict[str, Any]] = {**_FaissIvf.defaults, "m": None, "nbits": 8}

    def _make(self, nlist: int) -> Any:
        m = int(self._params["m"] or default_pq_m(self.dim))
        nbits = int(self._params["nbits"])
        if self.dim % m:
            raise ValueError(f"m={m} must divide dim={self.dim}")
        self._params.update(m=m, nbits=nbits)
        quantizer = faiss.IndexFlat(self.dim, self._metric_type)
        index = faiss.IndexIVFPQ(quantizer, self.dim, nlist, m, nbits, self._metric_type)
        index.own_fields = True
        quantizer.this.disown()
        return index

    def _min_train_points(self, nlist: int) -> int:
        return max(nlist, 2 ** int(self._params["nbits"]))


def default_pq_m(dim: int) -> int:
    """Largest GPU-supported code size with at least 8 dimensions per sub-quantizer (else any divisor)."""
    for m in _GPU_PQ_BYTES:
        if dim % m == 0 and dim // m >= 8:
            return m
    return 1
