"""The build's encoder spread over a Ray cluster (`searchrec build --ray`): a pool of actors, each loading the
model once, embeds chunks of the texts in parallel; answers come back in order.

Each actor asks for one CPU, and for one GPU when the cluster has GPUs (then the pool has at most as many
actors as GPUs, and `device = auto` puts the model there); on CPUs each actor's torch runs one thread, so
N actors use N cores without oversubscribing them. The pool stands where the model would (inside the
embedding cache, `indexer.encoders.make_encoder(spread=...)`, made by `indexer.ray_build.RayBuild`), so
only texts the cache lacks travel to the cluster, and what comes back is cached as before.

The actors start at the first `encode` and hold their CPUs (and GPUs) until `close` kills them: the build
closes the pool once the items are embedded (`indexer.build`, through `indexer.encoders.base.release`), so
the Ray tasks that write the shards next are not left waiting for CPUs the idle actors hold. A pool used
again after `close` starts new actors.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from indexer.encoders.base import WrappedEncoder

CHUNKS_PER_ACTOR = 4  # texts are cut into about this many chunks per actor, so a slow actor holds up little


class _EncoderActor:
    """One model in one Ray worker process."""

    def __init__(self, kind: str, batch_size: int, onnx_dir: str | None, device: str, threads: int) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        from indexer.encoders import ENCODERS

        self.encoder = ENCODERS[kind](batch_size, Path(onnx_dir) if onnx_dir else None, device)
        if device != "cuda":
            import torch

            torch.set_num_threads(threads)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts)

    def device(self) -> str:
        return self.encoder.device


class RayEncoderPool(WrappedEncoder):
    """A `TextEncoder` whose `encode` runs on a pool of Ray actors (see the module docstring); what it is
    (name, kind, dimension, the cache namespace) is that of the same encoder here, never loaded."""

    def __init__(
        self,
        kind: str,
        batch_size: int,
        onnx_dir: Path | None,
        device: str,
        *,
        actors: int | None = None,
    ) -> None:
        from indexer.encoders import ENCODERS

        super().__init__(ENCODERS[kind](batch_size, onnx_dir, "cpu"))
        self._make = (kind, batch_size, None if onnx_dir is None else str(onnx_dir), device)
        self._wanted = actors
        self._actors: list[Any] = []
        self._pool: Any = None
        self.actors = 0  # how many actors the pool has, or had before `close`
        self._devices: list[str] | None = None  # where each actor's model ran, asked once they are up

    def _start(self) -> None:
        """The actors, started at the first `encode`: until then the cluster's CPUs stay free for the
        build's other Ray work (the analysis tasks)."""
        import ray
        from ray.util import ActorPool

        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
        wanted = self._wanted or (gpus or cpus)
        count = min(wanted, gpus) if gpus else min(wanted, cpus)
        remote = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0)(_EncoderActor)
        self._actors = [remote.remote(*self._make, 1) for _ in range(count)]
        self._pool = ActorPool(self._actors)
        self.actors = count

    @property
    def device(self) -> str:
        """Where the actors' models run, e.g. ``ray: 2 actors on cpu`` (also after `close`)."""
        if self._devices is None:
            return "ray: no text was encoded"
        return f"ray: {self.actors} actors on {', '.join(sorted(set(self._devices)))}"

    def close(self) -> None:
        """Kill the actors, freeing their CPUs and GPUs for the cluster's other work; a later `encode` starts
        new ones."""
        import ray

        actors, self._actors, self._pool = self._actors, [], None
        for actor in actors:
            ray.kill(actor)

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self._actors:
            self._start()
        size = max(1, math.ceil(len(texts) / (CHUNKS_PER_ACTOR * self.actors)))
        chunks = [list(texts[i : i + size]) for i in range(0, len(texts), size)]
        parts: list[Any] = list(self._pool.map(lambda actor, chunk: actor.encode.remote(chunk), chunks))
        if self._devices is None:  # asked now, while the actors are up: `device` is read after `close`
            import ray

            self._devices = ray.get([actor.device.remote() for actor in self._actors])
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)
