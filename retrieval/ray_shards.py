"""A sharded version served on Ray Serve (`searchrec serve --ray`): each shard a deployment, today's REST
API unchanged in front.

Every shard of the version (`indexer.shards`) runs as a Ray Serve application ``<collection>-<version>-shard-
<i>`` (`ShardReplica`, `replicas` replicas each) that loads that shard's BM25 fields, ANN index and forward
index. The service process keeps what is whole (ids, keywords, columns, Word2Vec, behaviour, the query
encoder, fusion and the ranker) and reaches the shards through proxies that stand in for the local
segments (`retrieval.segments`): a branch's search scatters to every shard and gathers each one's top k,
and the ranker's per-row reads (BM25 scores, stored vectors, records of the merged candidates) go in one
batched call per shard that owns some of them. A shard that fails or does not answer within `timeout_s`
is left out of that answer and named in its `degraded` list (``shard:2``); Ray Serve restarts a failed
replica, and with two or more replicas the others keep answering meanwhile.

Ray is the optional ``distributed`` extra, imported only here.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.docstore import DocStore
from indexer.fields import Bm25Field, FieldedBm25
from indexer.shards import shard_dir
from retrieval.segments import (
    SegmentedDocStore,
    SegmentedIndex,
    SegmentedVectors,
    SegmentUnavailable,
    as_field_index,
)

DEFAULT_TIMEOUT_S = 2.0
TERMS_KEPT = 10_000  # document frequencies a field proxy remembers (they only change with the version)


class ShardReplica:
    """One replica of one shard: its BM25 fields, ANN index and forward index, loaded once."""

    def __init__(self, directory: str, analyzer: str) -> None:
        from indexer.ann import load_index

        path = Path(directory)
        self.bm25 = FieldedBm25.load(path / "bm25", default_analyzer=analyzer)
        self.vectors = load_index(path / "dense")
        self.docstore = DocStore.open(path / "docstore")

    def describe(self) -> dict[str, Any]:
        """What the service needs to stand in for this shard's parts without asking again."""
        return {
            "fields": [
                (f.name, f.analyzer, f.boost, f.sources, f.index.params, len(f.index))
                for f in self.bm25.fields
            ],
            "vectors": {
                "dim": int(self.vectors.dim),
                "params": self.vectors.params,
                "size": len(self.vectors),
            },
        }

    def bm25_search(self, field: int, tokens: list[str], k: int, allowed: np.ndarray | None) -> tuple:
        return self.bm25.fields[field].index.search(tokens, k, allowed=allowed)

    def bm25_scores(self, field: int, tokens: list[str], rows: np.ndarray) -> np.ndarray:
        return self.bm25.fields[field].index.score_rows(tokens, rows)

    def bm25_df(self, field: int, term: str) -> tuple[int, float]:
        index = self.bm25.fields[field].index
        return index.document_frequency(term), index.idf(term)

    def vector_search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple:
        return self.vectors.search(queries, k, allowed=allowed)

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        return self.vectors.reconstruct(rows)

    def records(self, ids: list[str]) -> list[dict | None]:
        return self.docstore.get_many(ids)


class _Remote:
    """Calls to one shard's deployment, each bounded by `timeout_s`; any failure is `SegmentUnavailable`."""

    def __init__(self, handle: Any, name: str, timeout_s: float) -> None:
        self.handle, self.name, self.timeout_s = handle, name, timeout_s

    def call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.handle, method).remote(*args).result(timeout_s=self.timeout_s)
        except Exception as error:  # a dead replica, a timeout, a lost connection: the shard is out
            raise SegmentUnavailable(self.name) from error


class RemoteField:
    """One BM25 field of one shard, as a segment of `SegmentedIndex`."""

    def __init__(self, remote: _Remote, field: int, params: dict, size: int) -> None:
        self.remote, self.field, self.params, self._size = remote, field, params, size
        self._terms: dict[str, tuple[int, float]] = {}

    def __len__(self) -> int:
        return self._size

    def _term(self, term: str) -> tuple[int, float]:
        if term not in self._terms:
            if len(self._terms) >= TERMS_KEPT:
                self._terms.clear()
            self._terms[term] = self.remote.call("bm25_df", self.field, term)
        return self._terms[term]

    def document_frequency(self, term: str) -> int:
        return int(self._term(term)[0])

    def idf(self, term: str) -> float:
        return float(self._term(term)[1])

    def search(self, tokens: list[str], k: int, *, allowed: np.ndarray | None = None) -> tuple:
        return self.remote.call("bm25_search", self.field, list(tokens), k, allowed)

    def score_rows(self, tokens: list[str], rows: np.ndarray) -> np.ndarray:
        return self.remote.call("bm25_scores", self.field, list(tokens), np.asarray(rows, dtype=np.int64))


class RemoteVectors:
    """One shard's ANN index, as a segment of `SegmentedVectors`."""

    def __init__(self, remote: _Remote, dim: int, params: dict, size: int) -> None:
        self.remote, self.dim, self.params, self._size = remote, dim, params, size

    def __len__(self) -> int:
        return self._size

    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> tuple:
        return self.remote.call("vector_search", np.asarray(queries, dtype=np.float32), k, allowed)

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        return self.remote.call("reconstruct", np.asarray(rows, dtype=np.int64))


class RemoteDocStore:
    """One shard's forward index."""

    def __init__(self, remote: _Remote, app: str) -> None:
        self.remote, self.app = remote, app

    def get_many(self, ids: Sequence[str]) -> list[dict | None]:
        return self.remote.call("records", list(ids))

    def get(self, item_id: str) -> dict | None:
        return self.get_many([item_id])[0]

    def close(self) -> None:
        from ray import serve

        with contextlib.suppress(Exception):  # the cluster may be gone already at shutdown
            serve.delete(self.app, _blocking=False)


ShardParts = tuple[FieldedBm25, SegmentedVectors, SegmentedDocStore]


def ray_shard_opener(replicas: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S, address: str | None = None):  # type: ignore[no-untyped-def]
    """A `shard_opener` for `retrieval.collection.Collection.load` that deploys each shard on Ray Serve."""

    def open_shards(path: Path, analyzer: str, shards: dict, ids: list[str]) -> ShardParts:
        import ray
        from ray import serve

        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        serve.start(proxy_location="Disabled")
        options: dict[str, Any] = {"num_replicas": replicas, "ray_actor_options": {"num_cpus": 0.25}}
        deployment: Any = serve.deployment(ShardReplica, **options)
        # one name per opening: a reload of the same version, or a root of the same name, deploys its own
        prefix = f"{Path(path).parent.parent.name}-{Path(path).name}-{uuid.uuid4().hex[:8]}"
        shards_up: list[tuple[_Remote, str, dict]] = []
        for shard in range(int(shards["count"])):
            app = f"{prefix}-shard-{shard}"
            bound = deployment.bind(str(shard_dir(path, shard)), analyzer)
            remote = _Remote(serve.run(bound, name=app, route_prefix=None), f"shard:{shard}", timeout_s)
            shards_up.append((remote, app, remote.call("describe")))
        return _parts(shards_up, shards, ids)

    return open_shards


def _parts(shards_up: list[tuple[_Remote, str, dict]], shards: dict, ids: list[str]) -> ShardParts:
    """BM25 fields, vectors and records whose segments are the deployed shards."""
    fields = []
    for i, (name, analyzer, boost, sources, _, _) in enumerate(shards_up[0][2]["fields"]):
        segments = [
            RemoteField(remote, i, d["fields"][i][4], d["fields"][i][5]) for remote, _, d in shards_up
        ]
        index = as_field_index(SegmentedIndex(segments))
        fields.append(Bm25Field(name, analyzer, boost, tuple(sources), index))
    vectors = SegmentedVectors([RemoteVectors(remote, **d["vectors"]) for remote, _, d in shards_up])
    sizes = [stop - start for start, stop in shards["rows"]]
    stores = SegmentedDocStore([RemoteDocStore(remote, app) for remote, app, _ in shards_up], sizes, ids)
    return FieldedBm25(fields), vectors, stores
