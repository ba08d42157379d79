"""`searchrec build --ray` on a local Ray with two CPUs: texts are analysed by Ray tasks, embedded by a pool
of encoder actors, and each shard's BM25, ANN index and forward index are written by Ray tasks (the rest of
the build as in one process), and the version equals the one built in one process: the same BM25, the same
records, the same vectors to float rounding. The encoder's actors are killed once the items are embedded, so
the shards' tasks after them find CPUs, and a second build in the same process runs as the first. Needs the
`distributed` extra (Ray), which `make install` installs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from indexer.artifact import file_checksums, read_manifest
from indexer.build import build_collection
from indexer.config import BuildConfig, TextVectorsConfig
from indexer.encoders.torch import Encoder
from indexer.shards import shard_checksum, shard_dir
from indexer.versions import resolve_artifact
from retrieval.collection import Collection
from tests.conftest import SCIFACT

ray = pytest.importorskip("ray")

DOCS = 40
T = TypeVar("T")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _recording_build() -> Any:
    """A `RayBuild` that notes the per-shard work it ran on Ray, by function name."""
    from indexer.ray_build import RayBuild

    class Recording(RayBuild):
        def __init__(self) -> None:
            super().__init__(actors=2)
            self.ran: list[str] = []

        def each(
            self, work: Callable[..., T], jobs: Sequence[tuple[Any, ...]], shared: tuple[Any, ...] = ()
        ) -> list[T]:
            self.ran += [work.__name__] * len(jobs)
            return super().each(work, jobs, shared)

    return Recording()


def test_a_ray_build_equals_the_one_process_build(local_ray: None, encoder: Encoder, tmp_path: Path) -> None:
    config = BuildConfig(limit=DOCS, encoder="torch", encoder_device="cpu", ann_backend="exact", shards=2)
    spread = _recording_build()
    report = build_collection(SCIFACT, tmp_path / "ray", config, spread=spread, progress=False)
    build_collection(SCIFACT, tmp_path / "local", config, encoder=encoder, progress=False)
    assert sorted(spread.ran) == sorted(["write_bm25_shard", "write_docstore_shard", "write_dense_shard"] * 2)
    manifest_encoder = Collection.load(tmp_path / "ray").manifest["params"]["encoder"]
    assert manifest_encoder["device"] == "ray: 2 actors on cpu" and manifest_encoder["kind"] == "torch"
    assert report.seconds["encode"] > 0
    on_ray, here = Collection.load(tmp_path / "ray"), Collection.load(tmp_path / "local")
    try:
        rows = np.arange(DOCS)
        np.testing.assert_allclose(
            on_ray.vectors.reconstruct(rows), here.vectors.reconstruct(rows), atol=1e-5
        )
        for text in ("cholesterol and heart disease in older adults", "stem cells in bone marrow"):
            terms = here.query_terms(text)
            found, expected = on_ray.inverted.search(terms, 20), here.inverted.search(terms, 20)
            assert len(expected[0]) > 0
            for left, right in zip(found, expected, strict=True):
                np.testing.assert_array_equal(left, right)
        assert on_ray.ids == here.ids
        assert on_ray.docstore.get_many(on_ray.ids) == here.docstore.get_many(here.ids)
        shards = on_ray.manifest["params"]["shards"]
        assert shards["rows"] == here.manifest["params"]["shards"]["rows"] == [[0, 20], [20, 40]]
        # BM25 shards of the same bytes (not RocksDB's files; the vectors differ by float rounding)
        for shard in range(2):
            bm25 = [file_checksums(shard_dir(c.path, shard) / "bm25") for c in (on_ray, here)]
            assert bm25[0] == bm25[1]
        assert len(shards["sha256"]) == 2
    finally:
        on_ray.close()
        here.close()


def test_a_second_ray_build_in_the_process_builds_hnsw_shards_after_the_encoder(
    local_ray: None, tmp_path: Path
) -> None:
    """After the first test's build, in the same process and Ray: the encoder's two actors take both
    CPUs, so the shards' HNSW tasks run only because the build kills them once the items are embedded."""
    config = BuildConfig(
        limit=DOCS, encoder="torch", encoder_device="cpu", shards=2, word2vec=TextVectorsConfig(enabled=False)
    )
    spread = _recording_build()
    report = build_collection(SCIFACT, tmp_path / "again", config, spread=spread, progress=False)
    assert spread.ran.count("write_dense_shard") == 2 and report.n_docs == DOCS
    version = resolve_artifact(tmp_path / "again")
    params = read_manifest(version)["params"]
    assert params["encoder"]["device"] == "ray: 2 actors on cpu" and params["ann"]["backend"] == "hnsw"
    on_disk = [shard_checksum(file_checksums(shard_dir(version, shard)).sha256) for shard in range(2)]
    assert params["shards"]["sha256"] == on_disk
    collection = Collection.load(tmp_path / "again")
    try:
        rows, _ = collection.vectors.search(collection.vectors.reconstruct(np.array([25])), 1)
        assert rows.tolist() == [[25]]  # a shard-1 item is its own nearest neighbour, across the shards
    finally:
        collection.close()


def test_each_runs_the_jobs_on_ray_in_order_and_raises_a_failed_jobs_error(local_ray: None) -> None:
    from indexer.ray_build import RayBuild
    from indexer.shards import shard_bounds

    each = RayBuild().each  # shard_bounds(n_items, shards): the item count shared, a shard count per job
    assert each(shard_bounds, [(2,), (3,)], shared=(3,)) == [[(0, 1), (1, 3)], [(0, 1), (1, 2), (2, 3)]]
    with pytest.raises(ValueError, match="5 shards for 3 items"):
        each(shard_bounds, [(2,), (5,), (1,)], shared=(3,))
