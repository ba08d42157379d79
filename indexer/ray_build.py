"""`searchrec build --ray`: the build's per-item and per-shard work on a Ray cluster.

What runs where:

- on the workers: the analysis of the texts, in Ray tasks over chunks (each worker loads the analyzers
  once, jieba's dictionary included); the embedding, on a pool of encoder actors
  (`indexer.encoders.ray_pool.RayEncoderPool`: one model per actor, a GPU each when the cluster has them),
  killed once the items are embedded; and the writing of a sharded version's shards (`each`: one Ray task
  per shard and part, one CPU each): each shard's BM25 fields, its ANN index (the shards' HNSW graphs grow
  in parallel) and its forward index (`indexer.shards`);
- on the driver: reading the items, merging the analysed chunks in order, the corpus's BM25 statistics
  over every item (sent to each shard's task, so scores equal the one-process build's), cutting the
  inputs into shards, what stays whole (ids, keywords, columns, Word2Vec, behaviour), and the manifest,
  which checksums every file the tasks wrote.

The shards' tasks write into the version's staging folder under the index root themselves, so the root
must be on storage every worker can write: on a local Ray (no address), this machine's filesystem; on a
cluster, a filesystem shared by the driver and every node, at the same path.

Without an address a local Ray starts with this machine's cores; Ray is the optional ``distributed``
extra, imported only here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from indexer.encoders.base import TextEncoder

CHUNKS_PER_CPU = 4  # analysis chunks per cluster CPU: enough to keep every worker busy
T = TypeVar("T")


def _analyze(analyzer: str, texts: list[str]) -> list[list[str]]:
    from indexer.analysis import make_analyzer

    analyze = make_analyzer(analyzer)
    return [analyze(text) for text in texts]


class RayBuild:
    """The cluster a build spreads over, and the work it spreads (see the module docstring); an
    `indexer.build.Spread`."""

    def __init__(self, actors: int | None = None, address: str | None = None) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self.actors = actors
        self.cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._analyze: Any = ray.remote(num_cpus=1)(_analyze)
        self._remote: dict[Callable[..., Any], Any] = {}  # each's work as Ray remote functions

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

    def each(
        self, work: Callable[..., T], jobs: Sequence[tuple[Any, ...]], shared: tuple[Any, ...] = ()
    ) -> list[T]:
        """``work(*shared, *job)`` for every job, each a Ray task with one CPU; the results in the jobs'
        order (an `indexer.shards.Each`). `shared` is put into the object store once, not sent per task.
        When a job fails (or the wait is interrupted), the others are cancelled, and the error raised only
        once none of them runs: no task still writes into a staging folder the failed build removes."""
        import ray

        remote = self._remote.get(work)
        if remote is None:
            remote = self._remote[work] = ray.remote(num_cpus=1)(work)
        refs = [ray.put(value) for value in shared]
        tasks = [remote.remote(*refs, *job) for job in jobs]
        try:
            pending = tasks
            while pending:
                finished, pending = ray.wait(pending, num_returns=1)
                ray.get(finished)  # a failed job's error, as soon as it fails
            return ray.get(tasks)
        except BaseException:
            for task in tasks:
                ray.cancel(task, force=True)  # a running task's worker is killed: its writes stop
            ray.wait(tasks, num_returns=len(tasks))
            raise
