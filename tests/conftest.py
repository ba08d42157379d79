"""Shared fixtures: a small SciFact slice and a small XQuAD-R Chinese slice, each built once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from indexer.encoders.torch import Encoder

if TYPE_CHECKING:
    from indexer.encoders.onnx_int8 import OnnxEncoder

DATA = Path(__file__).resolve().parents[1] / "data"
SCIFACT = DATA / "scifact"
XQUAD_ZH = DATA / "xquad-r-zh"
SLICE_DOCS = 200
XQUAD_SLICE_DOCS = 60


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The user cache folder (`SEARCHREC_CACHE_DIR`) of this test session: where a service exports the
    ONNX query encoder it embeds queries with (once per session), never the developer's own."""
    folder = tmp_path_factory.mktemp("user-cache")
    saved = os.environ.get("SEARCHREC_CACHE_DIR")
    os.environ["SEARCHREC_CACHE_DIR"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("SEARCHREC_CACHE_DIR", None)
    else:
        os.environ["SEARCHREC_CACHE_DIR"] = saved


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return Encoder(batch_size=32)


@pytest.fixture(scope="session")
def onnx_dir(user_cache: Path) -> Path:
    """The session's user cache of ONNX exports, holding the int8 MiniLM export: the one the services in
    these tests embed queries with."""
    from indexer.encoders.onnx_int8 import default_onnx_dir, export_int8

    export_int8(default_onnx_dir())  # measured 7 s (2 shared cores): export, quantise
    return default_onnx_dir()


@pytest.fixture(scope="session")
def onnx_encoder(onnx_dir: Path) -> OnnxEncoder:
    from indexer.encoders.onnx_int8 import OnnxEncoder

    return OnnxEncoder(batch_size=16, onnx_dir=onnx_dir)


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
    from indexer.encoders.embedding_cache import CachedEncoder

    root = tmp_path_factory.mktemp("scifact-slice")
    cached = CachedEncoder(encoder, slice_embeddings)
    build_collection(SCIFACT, root, BuildConfig(limit=SLICE_DOCS), encoder=cached, progress=False)
    return root


@pytest.fixture(scope="session")
def xquad_slice_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Index root holding one build of the first 60 XQuAD-R zh sentences with the default configuration
    (so `auto` picks the encoder: e5-multilingual, which needs AVX2)."""
    from indexer.build import build_collection
    from indexer.config import BuildConfig
    from indexer.encoders.e5_multilingual import unavailable_reason

    problem = unavailable_reason()
    if problem is not None:
        pytest.skip(f"e5-multilingual cannot run here: {problem}")
    root = tmp_path_factory.mktemp("xquad-slice")
    build_collection(XQUAD_ZH, root, BuildConfig(limit=XQUAD_SLICE_DOCS), progress=False)
    return root
