"""Which encoder embeds a collection's queries: the `query_encoder` setting, its default and its checks."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from indexer.encoders import ONNX_INT8, query_encoder_kind
from indexer.encoders.onnx_int8 import OnnxEncoder
from retrieval.candidates import SearchQuery
from retrieval.collection import Collection
from retrieval.service import CollectionService
from tests.conftest import SCIFACT


def test_query_encoder_kind_by_setting_and_build() -> None:
    assert query_encoder_kind("torch") == "onnx-int8"  # auto: int8 queries against fp32 documents
    assert query_encoder_kind("onnx-int8") == "onnx-int8"
    assert query_encoder_kind("e5-multilingual") == "e5-multilingual"  # E5 is already a 4-bit engine
    assert query_encoder_kind("torch", "build") == "torch"
    assert query_encoder_kind("onnx-int8", "torch") == "torch"  # the same space
    with pytest.raises(ValueError, match=r"choose one of \['auto', 'build', 'torch', 'onnx-int8'\]"):
        query_encoder_kind("torch", "e5-multilingual")
    with pytest.raises(ValueError, match=r"unknown query encoder 'int8'; choose one of \['auto', 'build'"):
        query_encoder_kind("torch", "int8")


def test_a_minilm_collection_embeds_queries_with_onnx_int8_by_default(
    scifact_slice_root: Path, onnx_dir: Path
) -> None:
    collection = Collection.load(scifact_slice_root)
    assert (collection.built_with, collection.encoder.kind) == ("torch", ONNX_INT8)
    assert isinstance(collection.encoder.inner, OnnxEncoder)
    assert collection.encoder.inner.model_path.parent == onnx_dir  # the user cache's export
    assert not (scifact_slice_root / "cache" / "onnx").exists()  # a service never writes into a root
    collection.close()
    built = Collection.load(scifact_slice_root, query_encoder="build")
    assert built.encoder.kind == "torch"
    built.close()
    with pytest.raises(ValueError, match="query encoder 'e5-multilingual'"):
        Collection.load(scifact_slice_root, query_encoder="e5-multilingual")


def test_auto_falls_back_to_the_builds_encoder_when_onnx_cannot_load(
    scifact_slice_root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: OnnxEncoder, texts: list[str]) -> np.ndarray:
        raise RuntimeError("no onnx here")

    monkeypatch.setattr(OnnxEncoder, "encode_queries", broken)
    with caplog.at_level(logging.WARNING):
        collection = Collection.load(scifact_slice_root)
    assert collection.encoder.kind == "torch"
    assert "query encoder onnx-int8 failed to load" in caplog.text
    collection.close()
    with pytest.raises(RuntimeError, match="no onnx here"):  # asked for by name: no fallback
        CollectionService.open(scifact_slice_root, query_encoder="onnx-int8")


def test_int8_queries_find_what_fp32_queries_find(scifact_slice_root: Path) -> None:
    services = {
        choice: CollectionService.open(scifact_slice_root, query_encoder=choice)
        for choice in ("build", "auto")
    }
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as lines:
        texts = [json.loads(line)["text"] for line, _ in zip(lines, range(50), strict=False)]
    overlap = []
    for text in texts:
        found = [
            set(s.run(SearchQuery(text, k=10, branches=frozenset({"dense"}))).branches["dense"].rows[:10])
            for s in services.values()
        ]
        overlap.append(len(found[0] & found[1]) / 10)
    assert np.mean(overlap) >= 0.9  # measured 0.956 (lowest 0.8) on the 200-document slice
    for service in services.values():
        service.close()


def test_serve_and_create_app_check_the_setting(scifact_slice_root: Path) -> None:
    from api.app import create_app
    from api.cli import app

    runner = CliRunner()
    index = ["serve", "--index", f"sf={scifact_slice_root}", "--workers", "1"]
    refused = runner.invoke(app, [*index, "--query-encoder", "e5-multilingual"])
    assert refused.exit_code == 2 and "query encoder 'e5-multilingual'" in refused.output
    refused = runner.invoke(app, [*index, "--query-encoder", "other=torch"])
    assert refused.exit_code == 2 and "no collection 'other'" in refused.output
    with pytest.raises(ValueError, match="unknown query encoder 'fast'"):
        create_app({"sf": scifact_slice_root}, query_encoders={"sf": "fast"})
    with pytest.raises(ValueError, match=r"a query encoder is given for unknown collection\(s\) \['nope'\]"):
        create_app({"sf": scifact_slice_root}, query_encoders={"nope": "auto"})
