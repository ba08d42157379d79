"""A sharded version served on Ray Serve (`searchrec serve --ray`): each shard a deployment, today's REST
API unchanged in front.

Every shard of the version (`indexer.shards`) runs as a Ray Serve application
``<root>-<version>-<opening>-shard-<i>`` (`ShardReplica`, `replicas` replicas each; each opening, e.g. a
reload, deploys its own) that loads that shard's BM25 fields, ANN index and forward index. The service
process keeps what is whole (ids, keywords, columns, Word2Vec, behaviour, the query
encoder, fusion and the ranker) and reaches the shards through proxies that stand in for the local
segments (`retrieval.segments`): a branch's search scatters to every shard at once and gathers each one's
top k. Before the learned ranker runs, the raw inputs of the merged candidates (each query term's BM25
impact per field, stored vectors, records) are fetched in one call per shard that owns some of them
(`ShardReads`, Augur's IO operator: fetch in batches, compute locally); the ranker's features, and the
answer's page, then read them from that fetch, and a BM25 score summed from those impacts in query order
is bit for bit the one the shard would compute. A shard that fails or does not answer within `timeout_s`
is left out of that answer and named in its `degraded` list (``shard:2``); Ray Serve restarts a failed
replica, and with two or more replicas the others keep answering meanwhile.

Ray is the optional ``distributed`` extra, imported only here.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.artifact import read_manifest, verify_checksums
from indexer.docstore import DocStore
from indexer.fields import Bm25Field, FieldedBm25
from indexer.shards import shard_dir
from retrieval.segments import (
    SegmentedDocStore,
    SegmentedIndex,
    SegmentedVectors,
    Segments,
    SegmentUnavailable,
    ShardedParts,
    as_field_index,
    note_unavailable,
)

DEFAULT_TIMEOUT_S = 2.0
TERMS_KEPT = 10_000  # document frequencies a field proxy remembers (they only change with the version)


class ShardReplica:
    """One replica of one shard: its BM25 fields, ANN index and forward index, loaded once, after checking
    the shard's files against the version's manifest (a replica on another node reads them from shared
    storage: it serves only the bytes the build wrote, or fails to start naming the file)."""

    def __init__(self, directory: str, analyzer: str) -> None:
        from indexer.ann import load_index

        path = Path(directory)
        version = path.parent.parent  # VERSION/shards/<i>
        manifest = read_manifest(version, verify=False)
        verify_checksums(version, manifest, under=str(path.relative_to(version)))
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

    def fetch(self, rows: np.ndarray, terms: list[list[str]], ids: list[str]) -> dict[str, Any]:
        """What the ranker reads of `rows` (this shard's, ascending; `ids` theirs), in one answer: per BM25
        field, each of its `terms`' impact on each row (terms x rows), the stored vectors (None when the
        index keeps none) and the records."""
        impacts = [
            np.stack([field.index.score_rows([term], rows) for term in field_terms])
            if field_terms
            else np.zeros((0, len(rows)), dtype=np.float32)
            for field, field_terms in zip(self.bm25.fields, terms, strict=True)
        ]
        try:
            vectors = self.vectors.reconstruct(rows)
        except (ValueError, RuntimeError, NotImplementedError):  # an index that keeps no vectors
            vectors = None
        return {"impacts": impacts, "vectors": vectors, "records": self.docstore.get_many(ids)}


class _Remote:
    """Calls to one shard's deployment, each bounded by `timeout_s` from when it was sent; any failure is
    `SegmentUnavailable`."""

    def __init__(self, handle: Any, name: str, timeout_s: float) -> None:
        self.handle, self.name, self.timeout_s = handle, name, timeout_s

    def submit(self, method: str, *args: Any) -> Callable[[], Any]:
        """Send the call now; what is returned waits for its answer."""
        deadline = time.monotonic() + self.timeout_s
        try:
            response = getattr(self.handle, method).remote(*args)
        except Exception as error:  # a handle that cannot send: the shard is out
            failure = SegmentUnavailable(self.name)
            failure.__cause__ = error

            def fail() -> Any:
                raise failure

            return fail

        def answer() -> Any:
            try:
                return response.result(timeout_s=max(0.0, deadline - time.monotonic()))
            except Exception as error:  # a dead replica, a timeout, a lost connection: the shard is out
                with contextlib.suppress(Exception):  # a late call is not left queued on the replica
                    response.cancel()
                raise SegmentUnavailable(self.name) from error

        return answer

    def call(self, method: str, *args: Any) -> Any:
        return self.submit(method, *args)()


@dataclass
class _Fetched:
    """One shard's answer to `ShardReplica.fetch` for a request's candidates."""

    rows: np.ndarray  # the shard's rows fetched, ascending
    terms: list[dict[str, int]]  # per field: term -> its row in `impacts`
    impacts: list[np.ndarray]
    vectors: np.ndarray | None
    records: dict[str, dict | None]

    def positions(self, rows: np.ndarray) -> np.ndarray | None:
        """Where `rows` are among those fetched; None when some were not."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros(0, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.rows, rows), len(self.rows) - 1)
        return at if np.array_equal(self.rows[at], rows) else None

    def scores(self, field: int, tokens: Sequence[str], rows: np.ndarray) -> np.ndarray | None:
        """BM25 of `tokens` for `rows`, summed in float32 in token order as the shard's index sums them;
        None when a row or a token was not fetched."""
        at, known = self.positions(rows), self.terms[field]
        if at is None or any(token not in known for token in tokens):
            return None
        out = np.zeros(len(at), dtype=np.float32)
        for token in tokens:
            out += self.impacts[field][known[token], at]
        return out


class _Down:
    """In place of a fetch that failed: this request's later reads of that shard fail at once."""


_DOWN = _Down()
# this request's fetches, by the remote shard they came from
_FETCHED: contextvars.ContextVar[dict[_Remote, _Fetched | _Down] | None] = contextvars.ContextVar(
    "fetched", default=None
)


def _fetched(remote: _Remote) -> _Fetched | None:
    """What this request fetched from `remote`'s shard (None: nothing); `SegmentUnavailable` when the
    fetch failed, so the request does not wait on that shard again."""
    found = (_FETCHED.get() or {}).get(remote)
    if isinstance(found, _Down):
        raise SegmentUnavailable(remote.name)
    return found


class ShardReads:
    """The `retrieval.segments.RowReads` of shards on Ray Serve: one `ShardReplica.fetch` per shard."""

    def __init__(
        self, remotes: Sequence[_Remote], sizes: Sequence[int], analyzers: Sequence[str], ids: list[str]
    ) -> None:
        self.remotes, self.layout = list(remotes), Segments(sizes)
        self.analyzers, self.ids = list(analyzers), ids

    def batched(self, rows: np.ndarray, terms: dict[str, list[str]]) -> AbstractContextManager[None]:
        """Fetch now, from every shard that owns some of `rows` at once; the block reads what came."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        per_field = [list(dict.fromkeys(terms.get(analyzer, []))) for analyzer in self.analyzers]
        owners = self.layout.owners(rows)
        started = []
        for number, remote in enumerate(self.remotes):
            mine = rows[owners == number]
            if len(mine):
                ids = [self.ids[row] for row in mine.tolist()]
                local = mine - self.layout.starts[number]
                started.append((remote, local, ids, remote.submit("fetch", local, per_field, ids)))
        fetched: dict[_Remote, _Fetched | _Down] = {}
        for remote, local, ids, answer in started:
            try:
                got = answer()
                fetched[remote] = _Fetched(
                    local,
                    [{term: i for i, term in enumerate(field_terms)} for field_terms in per_field],
                    got["impacts"],
                    got["vectors"],
                    dict(zip(ids, got["records"], strict=True)),
                )
            except Exception as error:  # down, late, or an answer not of this shape: named, not asked again
                failed = error if isinstance(error, SegmentUnavailable) else SegmentUnavailable(remote.name)
                note_unavailable(failed)
                fetched[remote] = _DOWN
        return _reading(fetched)


@contextlib.contextmanager
def _reading(fetched: dict[_Remote, _Fetched | _Down]) -> Iterator[None]:
    """A block whose reads of the shards look in `fetched` first."""
    token = _FETCHED.set(fetched)
    try:
        yield
    finally:
        _FETCHED.reset(token)


class RemoteField:
    """One BM25 field of one shard, as a segment of `SegmentedIndex`."""

    def __init__(self, remote: _Remote, field: int, params: dict, size: int) -> None:
        self.remote, self.field, self.params, self._size = remote, field, params, size
        self._terms: dict[str, tuple[int, float]] = {}

    def __len__(self) -> int:
        return self._size

    def _term(self, term: str) -> tuple[int, float]:
        known = self._terms.get(term)
        if known is None:
            if len(self._terms) >= TERMS_KEPT:
                self._terms.clear()
            known = self._terms[term] = self.remote.call("bm25_df", self.field, term)
        return known

    def document_frequency(self, term: str) -> int:
        return int(self._term(term)[0])

    def idf(self, term: str) -> float:
        return float(self._term(term)[1])

    def submit_search(
        self, tokens: list[str], k: int, *, allowed: np.ndarray | None = None
    ) -> Callable[[], tuple]:
        return self.remote.submit("bm25_search", self.field, list(tokens), k, allowed)

    def search(self, tokens: list[str], k: int, *, allowed: np.ndarray | None = None) -> tuple:
        return self.submit_search(tokens, k, allowed=allowed)()

    def submit_score_rows(self, tokens: list[str], rows: np.ndarray) -> Callable[[], np.ndarray]:
        fetched = _fetched(self.remote)
        scores = None if fetched is None else fetched.scores(self.field, tokens, rows)
        if scores is not None:
            return lambda: scores
        return self.remote.submit("bm25_scores", self.field, list(tokens), np.asarray(rows, dtype=np.int64))

    def score_rows(self, tokens: list[str], rows: np.ndarray) -> np.ndarray:
        return self.submit_score_rows(tokens, rows)()


class RemoteVectors:
    """One shard's ANN index, as a segment of `SegmentedVectors`."""

    def __init__(self, remote: _Remote, dim: int, params: dict, size: int) -> None:
        self.remote, self.dim, self.params, self._size = remote, dim, params, size

    def __len__(self) -> int:
        return self._size

    def submit_search(
        self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> Callable[[], tuple]:
        return self.remote.submit("vector_search", np.asarray(queries, dtype=np.float32), k, allowed)

    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> tuple:
        return self.submit_search(queries, k, allowed=allowed)()

    def submit_reconstruct(self, rows: np.ndarray) -> Callable[[], np.ndarray]:
        fetched = _fetched(self.remote)
        at = None if fetched is None or fetched.vectors is None else fetched.positions(rows)
        if fetched is not None and fetched.vectors is not None and at is not None:
            vectors = fetched.vectors[at]
            return lambda: vectors
        return self.remote.submit("reconstruct", np.asarray(rows, dtype=np.int64))

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        return self.submit_reconstruct(rows)()


class RemoteDocStore:
    """One shard's forward index."""

    def __init__(self, remote: _Remote, app: str) -> None:
        self.remote, self.app = remote, app

    def submit_get_many(self, ids: Sequence[str]) -> Callable[[], list[dict | None]]:
        fetched = _fetched(self.remote)
        if fetched is not None and all(item_id in fetched.records for item_id in ids):
            records = [fetched.records[item_id] for item_id in ids]
            return lambda: records
        return self.remote.submit("records", list(ids))

    def get_many(self, ids: Sequence[str]) -> list[dict | None]:
        return self.submit_get_many(ids)()

    def get(self, item_id: str) -> dict | None:
        return self.get_many([item_id])[0]

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the cluster may be gone already at shutdown
            from ray import serve

            serve.delete(self.app, _blocking=False)


def ray_shard_opener(replicas: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S, address: str | None = None):  # type: ignore[no-untyped-def]
    """A `shard_opener` for `retrieval.collection.Collection.load` that deploys each shard on Ray Serve."""

    def open_shards(path: Path, analyzer: str, shards: dict, ids: list[str]) -> ShardedParts:
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
        apps = [f"{prefix}-shard-{shard}" for shard in range(int(shards["count"]))]
        try:
            for shard, app in enumerate(apps):
                bound = deployment.bind(str(shard_dir(path, shard)), analyzer)
                remote = _Remote(serve.run(bound, name=app, route_prefix=None), f"shard:{shard}", timeout_s)
                shards_up.append((remote, app, remote.call("describe")))
        except BaseException:  # an opening that fails leaves no application of its own behind
            for app in apps:
                with contextlib.suppress(Exception):
                    serve.delete(app, _blocking=False)
            raise
        return _parts(shards_up, shards, ids)

    return open_shards


def _parts(shards_up: list[tuple[_Remote, str, dict]], shards: dict, ids: list[str]) -> ShardedParts:
    """BM25 fields, vectors and records whose segments are the deployed shards, and their batched reads."""
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
    reads = ShardReads([remote for remote, _, _ in shards_up], sizes, [f.analyzer for f in fields], ids)
    return ShardedParts(FieldedBm25(fields), vectors, stores, reads)
