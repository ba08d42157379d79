"""`searchrec build --ray`: the build's per-item work on a Ray cluster. Texts are analysed by Ray tasks in
chunks (each worker loads the analyzers once, jieba's dictionary included), and embedded by a pool of
encoder actors (`indexer.encoders.ray_pool.RayEncoderPool`: one model per actor, a GPU each when the
cluster has them). The driver keeps the rest: it merges the chunks in order, computes the corpus's BM25
statistics, trains Word2Vec once, and writes the version's shards (`indexer.shards`) to the index root,
which must be on storage the driver can write.

Without an address a local Ray starts with this machine's cores; Ray is the optional ``distributed``
extra, imported only here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from indexer.encoders.base import TextEncoder

CHUNKS_PER_CPU = 4  # analysis chunks per cluster CPU: enough to keep every worker busy


def _analyze(analyzer: str, texts: list[str]) -> list[list[str]]:
    from indexer.analysis import make_analyzer

    analyze = make_analyzer(analyzer)
    return [analyze(text) for text in texts]


class RayBuild:
    """The cluster a build spreads over, and the two kinds of work it spreads (see the module docstring)."""

    def __init__(self, actors: int | None = None, address: str | None = None) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self.actors = actors
        self.cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._analyze: Any = ray.remote(num_cpus=1)(_analyze)

    def encoder(self, kind: str, batch_size: int, onnx_dir: Path | None, device: str) -> TextEncoder:
        """The model of `kind` on a pool of actors (`indexer.encoders.make_encoder`'s `spread`)."""
        from indexer.encoders.ray_pool import RayEncoderPool

        return RayEncoderPool(kind, batch_size, onnx_dir, device, actors=self.actors)

    def analyze(self, analyzer: str, texts: list[str]) -> list[list[str]]:
        """`texts` analysed by `analyzer` in Ray tasks, in order."""
        import ray

        size = max(1, math.ceil(len(texts) / (CHUNKS_PER_CPU * self.cpus)))
        parts = [self._analyze.remote(analyzer, texts[i : i + size]) for i in range(0, len(texts), size)]
        return [tokens for part in ray.get(parts) for tokens in part]
