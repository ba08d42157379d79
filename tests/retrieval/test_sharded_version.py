"""A version built in shards (`BuildConfig.shards`) answers as the unsharded one: BM25 scored with the whole
corpus's statistics gives the same top 100 ids and scores, exact vector search the same neighbours, the
whole pipeline the same hits; records, `/similar` and written items work across shards. The manifest
checksums each shard, and a changed shard file changes its checksum and fails the load."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from indexer.artifact import ArtifactError, file_checksums, read_manifest
from indexer.build import build_collection
from indexer.config import BuildConfig
from indexer.encoders.embedding_cache import CachedEncoder
from indexer.encoders.torch import Encoder
from indexer.shards import shard_checksum, shard_dir
from indexer.versions import resolve_artifact
from retrieval.collection import Collection
from retrieval.service import CollectionService
from tests.conftest import SCIFACT, SLICE_DOCS

SHARDS = 4


@pytest.fixture(scope="module")
def roots(
    tmp_path_factory: pytest.TempPathFactory,
    encoder: Encoder,
    slice_embeddings: Path,
    scifact_slice_root: Path,
) -> dict[int, Path]:
    """The SciFact slice built whole and in four shards, exact vector search in both; the embeddings come
    from the slice's cache (`scifact_slice_root` filled it), so the model does not run."""
    folder = tmp_path_factory.mktemp("sharded")
    built = {}
    for shards in (1, SHARDS):
        config = BuildConfig(limit=SLICE_DOCS, ann_backend="exact", shards=shards)
        cached = CachedEncoder(encoder, slice_embeddings)
        build_collection(SCIFACT, folder / str(shards), config, encoder=cached, progress=False)
        built[shards] = folder / str(shards)
    return built


@pytest.fixture(scope="module")
def services(roots: dict[int, Path]) -> Iterator[dict[int, CollectionService]]:
    opened = {shards: CollectionService.open(root) for shards, root in roots.items()}
    yield opened
    for service in opened.values():
        service.close()


def _queries(n: int = 80) -> list[str]:
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in islice(lines, n)]


def test_the_manifest_lists_the_shards(services: dict[int, CollectionService]) -> None:
    shards = services[SHARDS].collection.manifest["params"]["shards"]
    assert shards["count"] == 4 and shards["rows"] == [[0, 50], [50, 100], [100, 150], [150, 200]]
    assert len(set(shards["sha256"])) == 4
    assert services[1].collection.manifest["params"]["shards"] is None
    assert len(services[SHARDS].collection) == len(services[1].collection) == SLICE_DOCS


def test_sharded_bm25_and_exact_vectors_equal_the_whole_index(services: dict[int, CollectionService]) -> None:
    whole, sharded = services[1].collection, services[SHARDS].collection
    for text in _queries():
        rows, scores = whole.inverted.search(whole.query_terms(text), 100)
        shard_rows, shard_scores = sharded.inverted.search(sharded.query_terms(text), 100)
        np.testing.assert_array_equal(shard_rows, rows)
        np.testing.assert_allclose(shard_scores, scores, rtol=0, atol=1e-6)
        vector = whole.encoder.encode_queries([text])
        rows, scores = whole.vectors.search(vector, 100)
        shard_rows, shard_scores = sharded.vectors.search(vector, 100)
        np.testing.assert_array_equal(shard_rows, rows)
        np.testing.assert_allclose(shard_scores, scores, rtol=0, atol=1e-6)


def test_the_pipeline_answers_alike(services: dict[int, CollectionService]) -> None:
    for text in _queries(30):
        whole = services[1].search(text, 10)
        sharded = services[SHARDS].search(text, 10)
        assert [(h.id, h.title) for h in sharded.hits] == [(h.id, h.title) for h in whole.hits]
        assert [h.score for h in sharded.hits] == pytest.approx([h.score for h in whole.hits])
    last = services[1].collection.ids[-1]  # in the last shard
    assert services[SHARDS].item(last) == services[1].item(last)
    assert [h.id for h in services[SHARDS].similar(last, 5).hits] == [
        h.id for h in services[1].similar(last, 5).hits
    ]


def test_an_item_written_to_a_sharded_version_is_found(roots: dict[int, Path], tmp_path: Path) -> None:
    root = tmp_path / "sharded"
    shutil.copytree(roots[SHARDS], root)
    service = CollectionService.open(root)
    try:
        service.live.upsert(
            "new-1", {"title": "Zebrafish fin regeneration", "text": "blastema zebrafish fins"}
        )
        assert [hit.id for hit in service.search("zebrafish blastema", 3).hits][:1] == ["new-1"]
        assert service.item("new-1")["title"] == "Zebrafish fin regeneration"
    finally:
        service.close()


def _on_disk(version: Path, count: int) -> list[str]:
    """Each shard's checksum from its files as they are now."""
    return [shard_checksum(file_checksums(shard_dir(version, shard)).sha256) for shard in range(count)]


def test_each_shard_checksum_is_its_files_and_a_changed_file_changes_it(
    roots: dict[int, Path], tmp_path: Path
) -> None:
    root = tmp_path / "sharded"
    shutil.copytree(roots[SHARDS], root)
    version = resolve_artifact(root)
    recorded = read_manifest(version)["params"]["shards"]["sha256"]
    assert _on_disk(version, SHARDS) == recorded
    changed = shard_dir(version, 1) / "dense" / "index.json"
    changed.write_bytes(changed.read_bytes().replace(b'"count"', b'"COUNT"'))
    after = _on_disk(version, SHARDS)
    assert after[1] != recorded[1]
    assert after[:1] + after[2:] == recorded[:1] + recorded[2:]
    with pytest.raises(ArtifactError, match="checksum mismatch") as failed:
        Collection.load(root)
    assert failed.value.file == "shards/1/dense/index.json"
