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
def scifact_slice_root(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    """Index root holding one published build of the first 200 SciFact documents."""
    from indexer.build import build_collection
    from indexer.config import BuildConfig

    root = tmp_path_factory.mktemp("scifact-slice")
    build_collection(SCIFACT, root, BuildConfig(limit=SLICE_DOCS), encoder=encoder, progress=False)
    return root
