"""A sharded version whose shards answer through the calls `retrieval.ray_shards` makes to Ray Serve, here
answered in this process (no Ray): the service scatters each search to the shards, and the learned
ranker's per-row reads of a request's candidates, and the answer's records, come from one `fetch` per
shard (Augur's batched IO), giving the same scores, bit for bit, as the shards read one call at a time in
one process. A shard whose fetch fails, or answers garbled, is named in `degraded` and not asked again in
that request; one that fails to give the page's records is named too; a replica refuses a shard whose
files differ from the manifest's."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from indexer.artifact import ArtifactError
from indexer.shards import shard_dir
from indexer.versions import resolve_artifact
from retrieval.ray_shards import ShardReplica, _parts, _Remote
from retrieval.segments import ShardedParts
from retrieval.service import CollectionService

QUERIES = [
    "cholesterol and heart disease in older adults",
    "vitamin D deficiency",
    "gene expression in tumour cells",
]


class _Answered:
    """A Ray Serve response that is already there."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self, timeout_s: float) -> Any:
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


class _LocalHandle:
    """A deployment handle whose replica is a `ShardReplica` here; counts the calls it gets."""

    def __init__(self, replica: ShardReplica, calls: Counter, failing: set[str]) -> None:
        self.replica, self.calls, self.failing = replica, calls, failing

    def __getattr__(self, method: str) -> Any:
        handle = self

        class _Method:
            def remote(self, *args: Any) -> _Answered:
                handle.calls[method] += 1
                if method in handle.failing:
                    return _Answered(RuntimeError(f"{method} failed"))
                if f"{method}:garbled" in handle.failing:
                    return _Answered({"impacts": []})  # an answer of another shape
                return _Answered(getattr(handle.replica, method)(*args))

        return _Method()


def _opener(calls: list[Counter], failing: list[set[str]]) -> Callable[..., ShardedParts]:
    def open_shards(path: Path, analyzer: str, shards: dict, ids: list[str]) -> ShardedParts:
        up = []
        for shard in range(int(shards["count"])):
            replica = ShardReplica(str(shard_dir(path, shard)), analyzer)
            handle = _LocalHandle(replica, calls[shard], failing[shard])
            up.append((_Remote(handle, f"shard:{shard}", 5.0), f"app-{shard}", replica.describe()))
        return _parts(up, shards, ids)

    return open_shards


@pytest.fixture
def served(
    sharded_slice_root: Path, search_rankers: dict[str, Path]
) -> Iterator[tuple[CollectionService, CollectionService, list[Counter], list[set[str]]]]:
    calls: list[Counter] = [Counter(), Counter()]
    failing: list[set[str]] = [set(), set()]
    ranker = search_rankers["lambdamart"]
    remote = CollectionService.open(sharded_slice_root, ranker=ranker, shard_opener=_opener(calls, failing))
    local = CollectionService.open(sharded_slice_root, ranker=ranker)
    yield remote, local, calls, failing
    remote.close()
    local.close()


def test_the_ranker_reads_each_shard_in_one_fetch_and_scores_as_in_one_process(served: Any) -> None:
    remote, local, calls, _ = served
    for text in QUERIES:
        for counter in calls:
            counter.clear()
        answer, expected = remote.search(text, 10, explain=True), local.search(text, 10, explain=True)
        assert answer.scorer == expected.scorer == "lambdamart", (answer.scorer, answer.scorer_reason)
        assert answer.degraded == []
        assert [(h.id, h.score, h.features) for h in answer.hits] == [
            (h.id, h.score, h.features) for h in expected.hits
        ]
        for counter in calls:
            assert counter["fetch"] == 1, counter
            # the features' BM25 scores, stored vectors and records came from the fetch
            assert counter["bm25_scores"] == counter["reconstruct"] == 0, counter
            assert counter["records"] == 0, counter  # the answer's page too


@pytest.mark.parametrize("failure", ["fetch", "fetch:garbled"])
def test_a_shard_whose_fetch_fails_is_named_and_not_asked_again(served: Any, failure: str) -> None:
    remote, _, calls, failing = served
    failing[1].add(failure)
    answer = remote.search(QUERIES[0], 10)
    assert answer.hits and answer.degraded == ["shard:1"]
    assert calls[1]["fetch"] == 1
    assert calls[1]["bm25_scores"] == calls[1]["reconstruct"] == calls[1]["records"] == 0, calls[1]


def test_a_replica_refuses_a_shard_whose_files_changed(sharded_slice_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "scifact"
    shutil.copytree(sharded_slice_root, root)
    shard = shard_dir(resolve_artifact(root), 1)
    ShardReplica(str(shard), "english")  # the shard as built loads
    changed = sorted((shard / "bm25").rglob("*.npy"))[0]
    data = bytearray(changed.read_bytes())
    data[-1] ^= 0xFF
    changed.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=changed.name):
        ShardReplica(str(shard), "english")


def test_a_shard_failing_the_page_records_is_named(sharded_slice_root: Path) -> None:
    calls: list[Counter] = [Counter(), Counter()]
    failing: list[set[str]] = [set(), {"records"}]
    service = CollectionService.open(sharded_slice_root, shard_opener=_opener(calls, failing))  # no ranker
    try:
        answer = service.search(QUERIES[0], 20)
        first_of_shard_1 = service.collection.manifest["params"]["shards"]["rows"][1][0]
        assert any(service.collection.row_of[hit.id] >= first_of_shard_1 for hit in answer.hits)
        assert answer.degraded == ["shard:1"]  # its hits came back without their stored fields
    finally:
        service.close()
