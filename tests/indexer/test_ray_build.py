"""`searchrec build --ray` on a local Ray with two CPUs: texts are analysed by Ray tasks and embedded by a
pool of encoder actors (the rest of the build as in one process), and the version equals the one built in
one process: the same BM25, the same vectors to float rounding. Needs the `distributed` extra (Ray), which
`make install` installs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.build import build_collection
from indexer.config import BuildConfig
from indexer.encoders.torch import Encoder
from indexer.versions import resolve_artifact
from retrieval.collection import Collection
from tests.conftest import SCIFACT

ray = pytest.importorskip("ray")

DOCS = 40


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_a_ray_build_equals_the_one_process_build(local_ray: None, encoder: Encoder, tmp_path: Path) -> None:
    from indexer.ray_build import RayBuild

    config = BuildConfig(limit=DOCS, encoder="torch", encoder_device="cpu", ann_backend="exact", shards=2)
    report = build_collection(SCIFACT, tmp_path / "ray", config, spread=RayBuild(actors=2), progress=False)
    build_collection(SCIFACT, tmp_path / "local", config, encoder=encoder, progress=False)
    manifest_encoder = Collection.load(tmp_path / "ray").manifest["params"]["encoder"]
    assert manifest_encoder["device"] == "ray: 2 actors on cpu" and manifest_encoder["kind"] == "torch"
    assert report.seconds["encode"] > 0
    on_ray, here = Collection.load(tmp_path / "ray"), Collection.load(tmp_path / "local")
    try:
        rows = np.arange(DOCS)
        np.testing.assert_allclose(
            on_ray.vectors.reconstruct(rows), here.vectors.reconstruct(rows), atol=1e-5
        )
        terms = here.query_terms("cholesterol and heart disease in older adults")
        for left, right in zip(
            on_ray.inverted.search(terms, 20), here.inverted.search(terms, 20), strict=True
        ):
            np.testing.assert_array_equal(left, right)
        assert (resolve_artifact(tmp_path / "ray") / "shards" / "1" / "dense").is_dir()
    finally:
        on_ray.close()
        here.close()
