"""A sharded version served with its shards on Ray Serve (a local Ray with two CPUs): the same answers as
served in one process, a shard whose replica is killed degrades the answer (named `shard:1`) instead of
failing it, until Ray Serve has replaced the replica, and a reload serves the new version's shards and
deletes the old version's deployments. Needs the `distributed` extra (Ray)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest

from indexer.build import build_collection
from indexer.config import BuildConfig
from indexer.encoders.embedding_cache import CachedEncoder
from indexer.encoders.torch import Encoder
from retrieval.registry import CollectionRegistry, service_opener
from retrieval.service import CollectionService
from tests.conftest import SCIFACT, SLICE_DOCS

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

RECOVERY_DEADLINE_S = 180.0  # Ray Serve replacing a killed replica on a busy two-core machine: a bound


@pytest.fixture(scope="module")
def on_ray(sharded_slice_root: Path) -> Iterator[CollectionService]:
    from retrieval.ray_shards import ray_shard_opener

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    opener = ray_shard_opener(replicas=1, timeout_s=3.0)
    service = CollectionService.open(sharded_slice_root, shard_opener=opener)
    yield service
    service.close()
    serve.shutdown()
    ray.shutdown()


def _queries(n: int) -> list[str]:
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in islice(lines, n)]


def test_shards_on_ray_answer_as_in_one_process(on_ray: CollectionService, sharded_slice_root: Path) -> None:
    local = CollectionService.open(sharded_slice_root)
    try:
        for text in _queries(15):
            remote_answer, local_answer = on_ray.search(text, 10), local.search(text, 10)
            assert remote_answer.degraded == []
            assert [(h.id, h.title) for h in remote_answer.hits] == [
                (h.id, h.title) for h in local_answer.hits
            ]
        last = local.collection.ids[-1]
        assert on_ray.item(last) == local.item(last)
        assert [h.id for h in on_ray.similar(last, 5).hits] == [h.id for h in local.similar(last, 5).hits]
    finally:
        local.close()


def test_a_killed_shard_degrades_the_answer_until_it_is_replaced(on_ray: CollectionService) -> None:
    text = _queries(1)[0]
    replicas = [
        actor
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == "serve" and "shard-1#" in actor["name"]
    ]
    assert replicas, ray.util.list_named_actors(all_namespaces=True)
    for replica in replicas:
        ray.kill(ray.get_actor(replica["name"], namespace="serve"), no_restart=True)
    answer = on_ray.search(text, 10)
    assert answer.degraded == ["shard:1"]
    first_of_shard_1 = on_ray.collection.manifest["params"]["shards"]["rows"][1][0]
    rows = [on_ray.collection.row_of[hit.id] for hit in answer.hits]
    assert rows and all(row < first_of_shard_1 for row in rows if row in set(rows))  # shard 0's alone
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while on_ray.search(text, 10).degraded:
        assert time.monotonic() < deadline, "Ray Serve did not replace the killed replica in time"
        time.sleep(1.0)


def test_a_reload_deploys_the_new_version_and_retires_the_old_shards(
    on_ray: CollectionService,
    sharded_slice_root: Path,
    encoder: Encoder,
    slice_embeddings: Path,
    tmp_path: Path,
) -> None:
    from retrieval.ray_shards import ray_shard_opener

    root = tmp_path / "scifact"
    shutil.copytree(sharded_slice_root, root)
    opener = service_opener(shard_opener=ray_shard_opener(replicas=1, timeout_s=3.0))
    registry = CollectionRegistry({"scifact": root}, opener=opener, retire_after_s=0.0)
    try:
        before = set(serve.status().applications)
        registry.load()
        first = registry.get("scifact")
        first_apps = set(serve.status().applications) - before
        assert len(first_apps) == 2  # one application per shard
        config = BuildConfig(limit=SLICE_DOCS // 2, ann_backend="exact", shards=2)
        cached = CachedEncoder(encoder, slice_embeddings)
        build_collection(SCIFACT, root, config, encoder=cached, progress=False)
        [switched] = registry.reload("scifact")
        assert switched.old_version == first.version != switched.new_version
        fresh = registry.get("scifact")
        assert len(fresh.collection) == SLICE_DOCS // 2
        answer = fresh.search(_queries(1)[0], 10)
        assert answer.hits and answer.degraded == []
        assert all(fresh.collection.row_of[hit.id] < SLICE_DOCS // 2 for hit in answer.hits)
        deadline = time.monotonic() + RECOVERY_DEADLINE_S
        while first_apps & set(serve.status().applications):  # the old version's shards are deleted
            assert time.monotonic() < deadline, serve.status().applications.keys()
            time.sleep(0.5)
    finally:
        registry.close()
