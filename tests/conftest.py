"""Shared fixtures: a small SciFact slice built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.encoder import Encoder

DATA = Path(__file__).resolve().parents[1] / "data"
SCIFACT = DATA / "scifact"
SLICE_DOCS = 200


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return Encoder(batch_size=32)


@pytest.fixture(scope="session")
def slice_embeddings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Embedding cache filled by the SciFact slice's build: another build of the slice with
    `CachedEncoder(encoder, slice_embeddings)` publishes a new version without running the model again."""
    return tmp_path_factory.mktemp("slice-embeddings")


@pytest.fixture(scope="session")
def scifact_slice_root(
    tmp_path_factory: pytest.TempPathFactory, encoder: Encoder, slice_embeddings: Path
) -> Path:
    """Index root holding one published build of the first 200 SciFact documents."""
    from indexer.build import build_collection
    from indexer.config import BuildConfig
    from indexer.embedding_cache import CachedEncoder

    root = tmp_path_factory.mktemp("scifact-slice")
    cached = CachedEncoder(encoder, slice_embeddings)
    build_collection(SCIFACT, root, BuildConfig(limit=SLICE_DOCS), encoder=cached, progress=False)
    return root
